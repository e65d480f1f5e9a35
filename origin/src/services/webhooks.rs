//! Webhooks: operators' URLs that are POSTed a signed JSON body when a video is ready or
//! failed, a camera goes offline or online, or storage is under pressure (the contract is
//! `timelapser_core::webhooks`; the README's "Webhooks" section tells receivers how to check
//! it).
//!
//! The event log is the source of truth, and the database holds everything else, so a crash
//! or a restart loses nothing and several replicas on one PostgreSQL send each attempt once:
//!
//! - The **dispatcher** ([`dispatch`]) reads the log after a cursor kept in the database, and
//!   for each event a webhook subscribes to inserts one delivery row per webhook (unique per
//!   webhook and event), moving the cursor in the same transaction. It runs when the bus
//!   publishes such an event, and every [`DISPATCH_EVERY`] in case it missed one (another
//!   replica's event, a lagging receiver); on PostgreSQL one replica at a time (an advisory
//!   lock, [`JobKey::Webhooks`]).
//! - The **deliverer** ([`claim_due`]) claims due deliveries in a write transaction, leasing
//!   each for the attempt's timeout plus a margin, and sends each in a task of its own: at
//!   most [`MAX_IN_FLIGHT`] at once and [`MAX_IN_FLIGHT_PER_WEBHOOK`] per webhook, each
//!   bounded by the attempt timeout. A receiver that hangs holds only its own slots, never a
//!   database connection, a lock, a capture or another webhook's delivery. Every replica
//!   delivers; the lease keeps two from sending the same attempt, and an attempt is recorded
//!   only by the claim that made it (its attempt number).
//! - An attempt answered 2xx delivers; anything else (another status, a timeout, a refused
//!   connection; redirects are not followed) is recorded with its status or error and retried
//!   after `timelapser_core::webhooks::retry_delay`, until the delivery fails after
//!   [`MAX_ATTEMPTS`] attempts. An attempt cut short by a crash counts; its lease runs out and
//!   the next one is made. Receivers may so see a delivery twice (the same `id`): at least
//!   once, never lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use timelapser_core::webhooks::{
    self as contract, CreatedWebhook, Delivery, DeliveryStatus, Payload, Webhook, WebhookEvent,
    MAX_ATTEMPTS,
};
use tokio::sync::{broadcast, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::cache::Represented;
use crate::db::{self, from_micros, to_micros, webhooks::Next, JobKey};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Attempts in flight at once, per origin.
pub const MAX_IN_FLIGHT: usize = 16;

/// Attempts in flight at once to one webhook, per origin (so a hanging receiver never takes
/// every slot).
pub const MAX_IN_FLIGHT_PER_WEBHOOK: usize = 4;

/// How often the dispatcher reads the log without being woken.
pub const DISPATCH_EVERY: Duration = Duration::from_secs(30);

/// How often the deliverer looks for due deliveries without being woken (another replica's
/// dispatch, a lease that ran out).
const DELIVER_EVERY: Duration = Duration::from_secs(5);

/// Log events read per dispatch transaction.
const DISPATCH_BATCH: i64 = 500;

/// How long delivered and failed deliveries stay in the log.
const KEEP_FINISHED: Duration = Duration::from_secs(30 * 86_400);

/// How often they are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The most deliveries `GET /api/webhooks/{id}/deliveries` lists.
pub const MAX_LOG_LIMIT: i64 = 200;

/// The longest URL accepted.
const MAX_URL_LEN: usize = 2048;

/// The shortest and longest secret accepted.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// How attempts are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// The longest one attempt may take, connection to answer.
    pub timeout: Duration,
    /// The base of the retry backoff (`timelapser_core::webhooks::retry_delay`).
    pub backoff_base: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            backoff_base: contract::DEFAULT_BACKOFF_BASE,
        }
    }
}

/// `POST /api/webhooks`.
#[derive(Debug)]
pub struct NewWebhook {
    /// Where to send deliveries.
    pub url: String,
    /// The signing secret; generated when absent.
    pub secret: Option<String>,
    /// Webhook event names.
    pub events: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// `PATCH /api/webhooks/{id}`.
#[derive(Debug)]
pub struct WebhookChanges {
    /// A new URL.
    pub url: Option<String>,
    /// A new secret (rotation; never read back).
    pub secret: Option<String>,
    /// A new set of events.
    pub events: Option<Vec<String>>,
    /// Enables or disables it.
    pub enabled: Option<bool>,
}

/// The fields of a webhook body.
const FIELDS: [&str; 4] = ["url", "secret", "events", "enabled"];

/// A webhook body's fields, each checked for its type; a 422 names the field at fault
/// (serde's own messages do not).
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Fields {
    fn of(body: serde_json::Value) -> Result<Self> {
        let serde_json::Value::Object(map) = body else {
            return Err(Error::Unprocessable(format!(
                "expected a JSON object with {}",
                FIELDS.join(", ")
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Error::Unprocessable(format!(
                "{unknown}: not a field of a webhook; they are {}",
                FIELDS.join(", ")
            )));
        }
        Ok(Self(map))
    }

    fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::Unprocessable(format!("{name}: must be a string"))),
        }
    }

    fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        let invalid = || Error::Unprocessable(format!("{name}: must be an array of strings"));
        match self.0.remove(name) {
            None => Ok(None),
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(invalid()),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(invalid()),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<Option<bool>> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(Error::Unprocessable(format!(
                "{name}: must be true or false"
            ))),
        }
    }
}

impl NewWebhook {
    /// From a JSON body: `{url, events, secret?, enabled?}`.
    pub fn from_json(body: serde_json::Value) -> Result<Self> {
        let mut fields = Fields::of(body)?;
        let required = |name: &str| Error::Unprocessable(format!("{name}: required"));
        Ok(Self {
            url: fields.string("url")?.ok_or_else(|| required("url"))?,
            secret: fields.string("secret")?,
            events: fields
                .strings("events")?
                .ok_or_else(|| required("events"))?,
            enabled: fields.boolean("enabled")?,
        })
    }
}

impl WebhookChanges {
    /// From a JSON body: any of `{url, events, secret, enabled}`.
    pub fn from_json(body: serde_json::Value) -> Result<Self> {
        let mut fields = Fields::of(body)?;
        Ok(Self {
            url: fields.string("url")?,
            secret: fields.string("secret")?,
            events: fields.strings("events")?,
            enabled: fields.boolean("enabled")?,
        })
    }
}

/// 422 unless `url` is an absolute `http` or `https` URL with a host.
pub fn validate_url(url: &str) -> Result<String> {
    let invalid = |why: &str| Error::Unprocessable(format!("url: {why}"));
    if url.len() > MAX_URL_LEN {
        return Err(invalid(&format!("longer than {MAX_URL_LEN} characters")));
    }
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| invalid(&format!("{e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("must name a host"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("may not have a fragment"));
    }
    Ok(parsed.to_string())
}

/// 422 unless every name is a webhook event and there is at least one; in the documented
/// order, without repeats.
pub fn parse_events(names: &[String]) -> Result<Vec<WebhookEvent>> {
    let mut events = Vec::new();
    for name in names {
        let event = WebhookEvent::parse(name).ok_or_else(|| {
            Error::Unprocessable(format!(
                "events: {name:?} is not a webhook event; they are {}",
                WebhookEvent::ALL.map(WebhookEvent::as_str).join(", ")
            ))
        })?;
        events.push(event);
    }
    if events.is_empty() {
        return Err(Error::Unprocessable(
            "events: name at least one webhook event".into(),
        ));
    }
    events.sort();
    events.dedup();
    Ok(events)
}

/// 422 unless the secret is 16 to 256 visible ASCII characters.
pub fn validate_secret(secret: &str) -> Result<()> {
    if !SECRET_LEN.contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Unprocessable(format!(
            "secret: {} to {} visible ASCII characters",
            SECRET_LEN.start(),
            SECRET_LEN.end()
        )));
    }
    Ok(())
}

/// A new random secret (256 bits).
pub fn generate_secret() -> String {
    crate::auth::generate_token("whsec")
}

fn stored_events(events: &[WebhookEvent]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn subscribed(row: &db::webhooks::WebhookRow) -> Vec<WebhookEvent> {
    row.events
        .split(',')
        .filter_map(WebhookEvent::parse)
        .collect()
}

fn to_resource(row: &db::webhooks::WebhookRow) -> Webhook {
    Webhook {
        id: row.id,
        url: row.url.clone(),
        events: subscribed(row),
        enabled: row.enabled,
        created_at: from_micros(row.created_at),
        updated_at: from_micros(row.updated_at),
    }
}

/// Creates a webhook; its secret is in the answer, and never again. It is sent the events
/// logged from now on.
pub async fn create(state: &AppState, new: NewWebhook) -> Result<CreatedWebhook> {
    let url = validate_url(&new.url)?;
    let events = parse_events(&new.events)?;
    let secret = match new.secret {
        Some(secret) => {
            validate_secret(&secret)?;
            secret
        }
        None => generate_secret(),
    };
    let mut tx = state.db.begin_write().await?;
    let row = db::webhooks::insert(
        &mut tx,
        &url,
        &secret,
        &stored_events(&events),
        new.enabled.unwrap_or(true),
        to_micros(db::now()),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(webhook = row.id, url = %row.url, events = %row.events, "webhook created");
    Ok(CreatedWebhook {
        webhook: to_resource(&row),
        secret,
    })
}

/// Every webhook.
pub async fn list(state: &AppState) -> Result<Represented<Vec<Webhook>>> {
    let mut conn = state.db.pool().acquire().await?;
    let rows = db::webhooks::list(&mut conn).await?;
    Represented::json_tagged_by_content(rows.iter().map(to_resource).collect())
}

async fn row(state: &AppState, id: i64) -> Result<db::webhooks::WebhookRow> {
    let mut conn = state.db.pool().acquire().await?;
    db::webhooks::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("webhook", id))
}

/// One webhook.
pub async fn get(state: &AppState, id: i64) -> Result<Represented<Webhook>> {
    Represented::json_tagged_by_content(to_resource(&row(state, id).await?))
}

/// Changes a webhook. Pending deliveries go to its new URL, signed with its new secret.
pub async fn update(
    state: &AppState,
    id: i64,
    changes: WebhookChanges,
) -> Result<Represented<Webhook>> {
    let url = changes.url.as_deref().map(validate_url).transpose()?;
    let events = changes.events.as_deref().map(parse_events).transpose()?;
    if let Some(secret) = &changes.secret {
        validate_secret(secret)?;
    }
    let mut tx = state.db.begin_write().await?;
    let mut row = db::webhooks::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("webhook", id))?;
    if let Some(url) = url {
        row.url = url;
    }
    if let Some(events) = events {
        row.events = stored_events(&events);
    }
    if let Some(secret) = changes.secret {
        row.secret = secret;
    }
    if let Some(enabled) = changes.enabled {
        row.enabled = enabled;
    }
    row.updated_at = to_micros(db::now());
    let row = db::webhooks::update(&mut tx, &row)
        .await?
        .ok_or_else(|| Error::not_found("webhook", id))?;
    tx.commit().await?;
    Represented::json_tagged_by_content(to_resource(&row))
}

/// Deletes a webhook with its delivery log; attempts in flight finish unrecorded.
pub async fn delete(state: &AppState, id: i64) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    let existed = db::webhooks::delete(&mut tx, id).await?;
    tx.commit().await?;
    if existed {
        Ok(())
    } else {
        Err(Error::not_found("webhook", id))
    }
}

/// A webhook's newest `limit` deliveries (newest first), each with its attempts.
pub async fn deliveries(
    state: &AppState,
    id: i64,
    limit: Option<i64>,
) -> Result<Represented<Vec<Delivery>>> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_LOG_LIMIT).contains(&limit) {
        return Err(Error::Unprocessable(format!("limit: 1 to {MAX_LOG_LIMIT}")));
    }
    let mut conn = state.db.pool().acquire().await?;
    if db::webhooks::get(&mut conn, id).await?.is_none() {
        return Err(Error::not_found("webhook", id));
    }
    let rows = db::webhooks::deliveries(&mut conn, id, limit).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut attempts: HashMap<i64, Vec<contract::Attempt>> = HashMap::new();
    for a in db::webhooks::attempts(&mut conn, &ids).await? {
        attempts
            .entry(a.delivery_id)
            .or_default()
            .push(contract::Attempt {
                attempt: a.attempt as u32,
                at: from_micros(a.at),
                duration_ms: a.duration_ms.max(0) as u64,
                status_code: a.status_code.map(|s| s as u16),
                error: a.error,
            });
    }
    let log = rows
        .into_iter()
        .filter_map(|r| {
            Some(Delivery {
                id: r.id,
                webhook_id: r.webhook_id,
                event: WebhookEvent::parse(&r.event)?,
                event_id: r.event_id,
                status: DeliveryStatus::parse(&r.status)?,
                attempt_count: r.attempt_count as u32,
                next_attempt_at: r.next_attempt_at.map(from_micros),
                delivered_at: r.delivered_at.map(from_micros),
                last_status_code: r.last_status_code.map(|s| s as u16),
                last_error: r.last_error,
                created_at: from_micros(r.created_at),
                attempts: attempts.remove(&r.id).unwrap_or_default(),
            })
        })
        .collect();
    Represented::json_tagged_by_content(log)
}

/// Starts the dispatcher and the deliverer (see the module docs).
pub fn spawn(state: AppState, options: DeliveryOptions, shutdown: CancellationToken) {
    let wake = Arc::new(Notify::new());
    let client = match reqwest::Client::builder()
        .timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("timelapser-origin/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; nothing will be delivered");
            return;
        }
    };
    // Subscribed before start-up returns (so nothing counting the bus's receivers later sees
    // this one arrive), and before the first pass (so nothing published during it is missed).
    let events = state.bus.subscribe();
    tokio::spawn(run_dispatcher(
        state.clone(),
        events,
        wake.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(run_deliverer(state, client, options, wake, shutdown));
}

async fn run_dispatcher(
    state: AppState,
    mut events: broadcast::Receiver<Arc<crate::bus::LoggedEvent>>,
    deliverer: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut pruned_at: Option<Instant> = None;
    loop {
        match state.db.try_job_lock(JobKey::Webhooks).await {
            Ok(Some(lock)) => {
                match dispatch(&state).await {
                    Ok(0) => {}
                    Ok(_) => deliverer.notify_one(),
                    Err(e) => tracing::warn!(error = %e, "dispatching events to webhooks failed"),
                }
                if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    pruned_at = Some(Instant::now());
                    if let Err(e) = prune(&state).await {
                        tracing::warn!(error = %e, "pruning the webhook delivery log failed");
                    }
                }
                lock.release().await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "dispatching events to webhooks failed"),
        }
        let deadline = tokio::time::Instant::now() + DISPATCH_EVERY;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                received = events.recv() => match received {
                    Ok(logged) if WebhookEvent::of(&logged.event).is_some() => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Reads the log after the cursor and creates the deliveries of what webhooks subscribe to,
/// moving the cursor in the same transaction; how many deliveries it created.
pub async fn dispatch(state: &AppState) -> Result<usize> {
    let mut created = 0;
    loop {
        let (cursor, rows) = {
            let mut conn = state.db.pool().acquire().await?;
            let cursor = db::webhooks::cursor(&mut conn).await?;
            let pruned = db::events::pruned_through(&mut conn).await?;
            if pruned > cursor {
                tracing::warn!(
                    cursor,
                    pruned,
                    "events were pruned before webhooks were sent them; those are not delivered"
                );
            }
            (
                cursor,
                db::events::after(&mut conn, cursor, DISPATCH_BATCH).await?,
            )
        };
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(created);
        };
        let full = rows.len() as i64 == DISPATCH_BATCH;
        let now = to_micros(db::now());
        let mut tx = state.db.begin_write().await?;
        if !db::webhooks::advance_cursor(&mut tx, cursor, last).await? {
            // Another dispatcher moved it (a replica that took over): its deliveries stand.
            return Ok(created);
        }
        // Read in the transaction: a webhook committed before it is seen, and one committed
        // after it has a larger since_event_id than any event here.
        let hooks = db::webhooks::enabled(&mut tx).await?;
        for row in rows {
            let Some(logged) = crate::event_log::read_row(row.clone()) else {
                continue;
            };
            let Some(kind) = WebhookEvent::of(&logged.event) else {
                continue;
            };
            for hook in &hooks {
                if row.id <= hook.since_event_id || !subscribed(hook).contains(&kind) {
                    continue;
                }
                let delivery = db::webhooks::NewDelivery {
                    webhook_id: hook.id,
                    event_id: row.id,
                    event: kind.as_str(),
                    payload: &row.payload,
                    event_created_at: row.created_at,
                };
                if db::webhooks::insert_delivery(&mut tx, &delivery, now).await? {
                    created += 1;
                }
            }
        }
        tx.commit().await?;
        if !full {
            return Ok(created);
        }
    }
}

async fn prune(state: &AppState) -> Result<()> {
    let keep = chrono::Duration::from_std(KEEP_FINISHED).unwrap_or(chrono::Duration::MAX);
    let before = to_micros(db::now() - keep);
    let mut tx = state.db.begin_write().await?;
    let pruned = db::webhooks::prune(&mut tx, before).await?;
    tx.commit().await?;
    if pruned > 0 {
        tracing::info!(pruned, "pruned the webhook delivery log");
    }
    Ok(())
}

/// Attempts in flight in this process.
struct InFlight {
    slots: Arc<Semaphore>,
    per_webhook: Mutex<HashMap<i64, usize>>,
}

impl InFlight {
    /// The webhooks with no slot left.
    fn full(&self) -> Vec<i64> {
        let per = self.per_webhook.lock().expect("in-flight lock");
        per.iter()
            .filter(|(_, n)| **n >= MAX_IN_FLIGHT_PER_WEBHOOK)
            .map(|(id, _)| *id)
            .collect()
    }

    fn count(&self, webhook_id: i64) -> usize {
        let per = self.per_webhook.lock().expect("in-flight lock");
        per.get(&webhook_id).copied().unwrap_or(0)
    }

    fn start(&self, webhook_id: i64) {
        let mut per = self.per_webhook.lock().expect("in-flight lock");
        *per.entry(webhook_id).or_default() += 1;
    }

    fn finish(&self, webhook_id: i64) {
        let mut per = self.per_webhook.lock().expect("in-flight lock");
        if let Some(n) = per.get_mut(&webhook_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&webhook_id);
            }
        }
    }
}

async fn run_deliverer(
    state: AppState,
    client: reqwest::Client,
    options: DeliveryOptions,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let in_flight = Arc::new(InFlight {
        slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        per_webhook: Mutex::new(HashMap::new()),
    });
    loop {
        let wait = match claim_due(&state, &in_flight, options).await {
            Ok(claimed) if !claimed.is_empty() => {
                for delivery in claimed {
                    let permit = in_flight
                        .slots
                        .clone()
                        .try_acquire_owned()
                        .expect("claims never exceed the free slots");
                    in_flight.start(delivery.webhook_id);
                    let (state, client, in_flight, wake, shutdown) = (
                        state.clone(),
                        client.clone(),
                        in_flight.clone(),
                        wake.clone(),
                        shutdown.clone(),
                    );
                    tokio::spawn(async move {
                        let webhook_id = delivery.webhook_id;
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = attempt(&state, &client, options, delivery) => {}
                        }
                        in_flight.finish(webhook_id);
                        drop(permit);
                        wake.notify_one();
                    });
                }
                // More may be due.
                Duration::ZERO
            }
            Ok(_) => until_next_due(&state).await,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                DELIVER_EVERY
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// How long until a pending delivery is due (at most [`DELIVER_EVERY`]); when one is due now
/// but none could be claimed (every slot taken), a finished attempt wakes the deliverer.
async fn until_next_due(state: &AppState) -> Duration {
    let next = async {
        let mut conn = state.db.pool().acquire().await?;
        Ok::<_, Error>(db::webhooks::next_due(&mut conn).await?)
    }
    .await;
    match next {
        Ok(Some(at)) => {
            let now = to_micros(db::now());
            if at <= now {
                DELIVER_EVERY
            } else {
                Duration::from_micros((at - now) as u64).min(DELIVER_EVERY)
            }
        }
        Ok(None) => DELIVER_EVERY,
        Err(e) => {
            tracing::warn!(error = %e, "reading the webhook deliveries failed");
            DELIVER_EVERY
        }
    }
}

/// Claims, with a lease, the due deliveries this process has slots for.
async fn claim_due(
    state: &AppState,
    in_flight: &InFlight,
    options: DeliveryOptions,
) -> Result<Vec<db::webhooks::Claimed>> {
    let free = in_flight.slots.available_permits();
    if free == 0 {
        return Ok(Vec::new());
    }
    let now = to_micros(db::now());
    let full = in_flight.full();
    // A read first: an idle origin takes no writer lock.
    {
        let mut conn = state.db.pool().acquire().await?;
        if db::webhooks::due(&mut conn, now, &full, 1)
            .await?
            .is_empty()
        {
            return Ok(Vec::new());
        }
    }
    let mut tx = state.db.begin_write().await?;
    db::webhooks::fail_abandoned(&mut tx, now, i64::from(MAX_ATTEMPTS)).await?;
    let due = db::webhooks::due(&mut tx, now, &full, free as i64).await?;
    let mut taken: HashMap<i64, usize> = HashMap::new();
    let ids: Vec<i64> = due
        .iter()
        .filter(|d| {
            let n = taken.entry(d.webhook_id).or_default();
            *n += 1;
            in_flight.count(d.webhook_id) + *n <= MAX_IN_FLIGHT_PER_WEBHOOK
        })
        .map(|d| d.id)
        .collect();
    let lease = options.timeout + Duration::from_secs(60);
    let lease_until = now + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
    let claimed = db::webhooks::claim(&mut tx, &ids, lease_until).await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Makes one attempt and records it.
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    options: DeliveryOptions,
    delivery: db::webhooks::Claimed,
) {
    let outcome = send(client, options, &delivery).await;
    let attempts = u32::try_from(delivery.attempt).unwrap_or(u32::MAX);
    let (result, next) = match outcome.result {
        Ok(()) => ("delivered", Next::Delivered(to_micros(db::now()))),
        Err(_) => match contract::retry_delay(attempts, options.backoff_base) {
            Some(delay) => (
                "retry",
                Next::RetryAt(
                    to_micros(db::now()) + i64::try_from(delay.as_micros()).unwrap_or(i64::MAX / 2),
                ),
            ),
            None => ("failed", Next::Failed),
        },
    };
    state
        .metrics
        .record(|| metrics::counter!("webhook_attempts_total", "result" => result).increment(1));
    let record = db::webhooks::Outcome {
        at: outcome.at,
        duration_ms: outcome.duration.as_millis().min(i64::MAX as u128) as i64,
        status_code: outcome.status_code.map(i64::from),
        error: outcome.result.err(),
        next,
    };
    match &record.error {
        None => tracing::debug!(
            delivery = delivery.id,
            webhook = delivery.webhook_id,
            attempt = delivery.attempt,
            "webhook delivered"
        ),
        Some(error) => tracing::info!(
            delivery = delivery.id,
            webhook = delivery.webhook_id,
            attempt = delivery.attempt,
            %error,
            next = result,
            "webhook attempt failed"
        ),
    }
    let recorded = async {
        let mut tx = state.db.begin_write().await?;
        let recorded =
            db::webhooks::record(&mut tx, delivery.id, delivery.attempt, &record).await?;
        tx.commit().await?;
        Ok::<_, Error>(recorded)
    }
    .await;
    match recorded {
        Ok(true) => {}
        // Deleted meanwhile, or its lease ran out and another attempt was claimed.
        Ok(false) => tracing::debug!(delivery = delivery.id, "webhook attempt no longer current"),
        Err(e) => {
            tracing::warn!(error = %e, delivery = delivery.id, "recording a webhook attempt failed; its lease will run out and it is sent again")
        }
    }
}

/// What one attempt came to.
struct Sent {
    /// When it was sent, micros.
    at: i64,
    duration: Duration,
    status_code: Option<u16>,
    /// Delivered, or what went wrong.
    result: std::result::Result<(), String>,
}

/// POSTs a delivery, signed now.
async fn send(
    client: &reqwest::Client,
    options: DeliveryOptions,
    delivery: &db::webhooks::Claimed,
) -> Sent {
    let at = to_micros(db::now());
    let started = Instant::now();
    let body = match payload(delivery) {
        Ok(payload) => payload.to_body(),
        Err(e) => {
            return Sent {
                at,
                duration: started.elapsed(),
                status_code: None,
                result: Err(e),
            }
        }
    };
    let signature = contract::sign(delivery.secret.as_bytes(), Utc::now().timestamp(), &body);
    let response = client
        .post(&delivery.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(contract::EVENT, &delivery.event)
        .header(contract::DELIVERY, delivery.id.to_string())
        .header(contract::SIGNATURE, signature)
        .body(body)
        .send()
        .await;
    let duration = started.elapsed();
    match response {
        Ok(response) => {
            let status = response.status();
            Sent {
                at,
                duration,
                status_code: Some(status.as_u16()),
                result: if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("the receiver answered {status}"))
                },
            }
        }
        Err(e) => Sent {
            at,
            duration,
            status_code: None,
            result: Err(describe(&e, options.timeout)),
        },
    }
}

/// The body of a delivery.
fn payload(delivery: &db::webhooks::Claimed) -> std::result::Result<Payload, String> {
    Ok(Payload {
        id: delivery.id,
        event: WebhookEvent::parse(&delivery.event)
            .ok_or_else(|| format!("{:?} is not a webhook event", delivery.event))?,
        event_id: delivery.event_id,
        created_at: from_micros(delivery.event_created_at),
        data: serde_json::from_str(&delivery.payload)
            .map_err(|e| format!("the logged payload is not JSON: {e}"))?,
    })
}

/// A request error for the delivery log: what happened, without the URL (the log shows it)
/// and with the innermost cause (a refused connection, a name that does not resolve).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms (timed out)", timeout.as_millis());
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let what = if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirected (not followed)"
    } else {
        "the request failed"
    };
    let mut text = format!("{what}: {cause}");
    text.truncate(500);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        assert_eq!(
            validate_url("https://example.org/hooks?x=1").unwrap(),
            "https://example.org/hooks?x=1"
        );
        assert_eq!(
            validate_url("http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9/"
        );
        for bad in [
            "",
            "example.org/hooks",
            "ftp://example.org/",
            "file:///etc/passwd",
            "https://",
            "https://example.org/#top",
            "mailto:ops@example.org",
        ] {
            match validate_url(bad) {
                Err(Error::Unprocessable(detail)) => {
                    assert!(detail.starts_with("url:"), "{detail}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn events_are_from_the_catalogue() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&["camera_online", "video_ready", "camera_online"])).unwrap(),
            [WebhookEvent::VideoReady, WebhookEvent::CameraOnline]
        );
        for bad in [
            &[][..],
            &["video_progress"],
            &["video_ready", "VIDEO_READY"],
        ] {
            match parse_events(&names(bad)) {
                Err(Error::Unprocessable(detail)) => {
                    assert!(detail.starts_with("events:"), "{detail}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn bodies_name_the_field_at_fault() {
        let named = |body: serde_json::Value, field: &str| match NewWebhook::from_json(body) {
            Err(Error::Unprocessable(detail)) => assert!(detail.starts_with(field), "{detail}"),
            other => panic!("{other:?}"),
        };
        named(serde_json::json!({"events": ["video_ready"]}), "url:");
        named(serde_json::json!({"url": "http://x/"}), "events:");
        named(serde_json::json!({"url": 5, "events": []}), "url:");
        named(
            serde_json::json!({"url": "http://x/", "events": "video_ready"}),
            "events:",
        );
        named(
            serde_json::json!({"url": "http://x/", "events": [1]}),
            "events:",
        );
        named(
            serde_json::json!({"url": "http://x/", "events": [], "enabled": 1}),
            "enabled:",
        );
        named(
            serde_json::json!({"url": "http://x/", "events": [], "colour": 1}),
            "colour:",
        );
        assert!(matches!(
            NewWebhook::from_json(serde_json::json!([])),
            Err(Error::Unprocessable(_))
        ));
        let changes = WebhookChanges::from_json(serde_json::json!({"enabled": false})).unwrap();
        assert_eq!(changes.enabled, Some(false));
        assert!(changes.url.is_none() && changes.events.is_none() && changes.secret.is_none());
    }

    #[test]
    fn secrets_are_long_and_visible() {
        assert!(validate_secret(&generate_secret()).is_ok());
        assert!(validate_secret("0123456789abcdef").is_ok());
        for bad in ["short", "0123456789abcde f", &"x".repeat(257)] {
            assert!(matches!(validate_secret(bad), Err(Error::Unprocessable(_))));
        }
    }
}
