//! System settings and operator preferences: JSON objects of keys to values, with a timestamp
//! entity tag (v4's `"<updated_at.timestamp()>"`), cached briefly by clients and written with
//! If-Match so that two operators never overwrite each other's change unseen.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::Value;
use timelapser_core::conditional::{Precondition, Preconditions, Validators};
use timelapser_core::events::Event;
use timelapser_core::keys;
use timelapser_core::resources::Settings;
use timelapser_core::EntityTag;

use super::CACHE_TTL;
use crate::cache::Represented;
use crate::db::{self, from_micros, key_values::Table, to_micros};
use crate::error::{Error, Result};
use crate::event_log::log_event;
use crate::state::AppState;

/// A setting the system knows, with its default and its check.
struct Known {
    key: &'static str,
    default: fn() -> Value,
    check: fn(&Value) -> bool,
    expects: &'static str,
}

fn positive_integer_up_to(max: i64) -> impl Fn(&Value) -> bool {
    move |v| v.as_i64().is_some_and(|n| (1..=max).contains(&n))
}

const KNOWN: &[Known] = &[
    Known {
        key: "offline_after_seconds",
        default: || Value::from(120),
        check: |v| positive_integer_up_to(7 * 86_400)(v) && v.as_i64() >= Some(5),
        expects: "an integer number of seconds from 5 to 604800",
    },
    Known {
        key: "capture_interval_seconds",
        default: || Value::from(10),
        check: |v| positive_integer_up_to(86_400)(v),
        expects: "an integer number of seconds from 1 to 86400",
    },
    Known {
        key: "site_name",
        default: || Value::from("Timelapser"),
        check: |v| {
            v.as_str()
                .is_some_and(|s| !s.trim().is_empty() && s.chars().count() <= 100)
        },
        expects: "a string of 1 to 100 characters",
    },
    Known {
        key: "timezone",
        default: || Value::from("UTC"),
        check: is_time_zone,
        expects: "an IANA time zone name such as \"Europe/Paris\"",
    },
    Known {
        key: "event_retention_count",
        default: || Value::from(100_000),
        check: |v| positive_integer_up_to(100_000_000)(v),
        expects: "a positive integer",
    },
    Known {
        key: "event_retention_hours",
        default: || Value::from(72),
        check: |v| positive_integer_up_to(24 * 365)(v),
        expects: "an integer number of hours from 1 to 8760",
    },
    // The site's retention (0: no limit); a camera's own policy overrides each.
    Known {
        key: "retention_images_days",
        default: || Value::from(0),
        check: |v| v.as_i64().is_some_and(|n| (0..=36_500).contains(&n)),
        expects: "an integer number of days from 0 (keep forever) to 36500",
    },
    Known {
        key: "retention_images_max_bytes",
        default: || Value::from(0),
        check: |v| v.as_i64().is_some_and(|n| n >= 0),
        expects: "an integer number of bytes per camera, 0 for no cap",
    },
    Known {
        key: "retention_videos_days",
        default: || Value::from(0),
        check: |v| v.as_i64().is_some_and(|n| (0..=36_500).contains(&n)),
        expects: "an integer number of days from 0 (keep forever) to 36500",
    },
];

/// Whether a value names a time zone of the IANA database (`UTC`, `Europe/Paris`).
fn is_time_zone(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|name| name.parse::<chrono_tz::Tz>().is_ok())
}

/// Largest preferences document, serialized (the whole document, not only one write).
pub const MAX_PREFERENCES_BYTES: usize = 64 * 1024;

/// A preference the origin knows the meaning of, and checks.
struct KnownPreference {
    key: &'static str,
    check: fn(&Value) -> bool,
    expects: &'static str,
}

/// The known preferences: the operator's display time zone.
const KNOWN_PREFERENCES: &[KnownPreference] = &[KnownPreference {
    key: "timezone",
    check: is_time_zone,
    expects: "an IANA time zone name such as \"Europe/Paris\"",
}];

/// The preference keys the origin checks (others are stored as given).
pub fn known_preferences() -> impl Iterator<Item = &'static str> {
    KNOWN_PREFERENCES.iter().map(|k| k.key)
}

/// Writes the defaults of settings that are not set yet.
pub async fn seed_defaults(state: &AppState) -> Result<()> {
    let now = to_micros(db::now());
    let mut tx = state.db.begin_write().await?;
    for known in KNOWN {
        db::key_values::put_if_missing(
            &mut tx,
            Table::Settings,
            known.key,
            &(known.default)().to_string(),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A key-value document as stored: values and the newest modification time.
async fn load(state: &AppState, table: Table) -> Result<Settings> {
    let mut conn = state.db.pool().acquire().await?;
    let entries = db::key_values::all(&mut conn, table).await?;
    let updated_at = entries.iter().map(|e| e.updated_at).max().unwrap_or(0);
    let values = entries
        .into_iter()
        .map(|e| {
            let value = serde_json::from_str(&e.value).unwrap_or(Value::String(e.value));
            (e.key, value)
        })
        .collect();
    Ok(Settings {
        values,
        updated_at: from_micros(updated_at),
    })
}

/// The timestamp tag of a document.
pub fn document_etag(updated_at: DateTime<Utc>) -> EntityTag {
    EntityTag::from_timestamp(updated_at)
}

/// The settings, from the cache.
pub async fn get(state: &AppState) -> Result<Arc<Represented<Settings>>> {
    state
        .cache
        .get_or_load(&keys::settings(), CACHE_TTL, || async move {
            let settings = load(state, Table::Settings).await?;
            let etag = document_etag(settings.updated_at);
            Represented::json(settings, etag)
        })
        .await
}

/// The site's name (`site_name`), for pages.
pub async fn site_name(state: &AppState) -> Result<String> {
    let settings = get(state).await?;
    Ok(settings
        .value
        .values
        .get("site_name")
        .and_then(Value::as_str)
        .unwrap_or("Timelapser")
        .to_owned())
}

/// The site's time zone (`timezone`): "images today" and every time a page shows are in it.
/// Validated as an IANA name when set; UTC if the stored value is somehow not one.
pub async fn time_zone(state: &AppState) -> Result<chrono_tz::Tz> {
    Ok(text(state, "timezone")
        .await?
        .parse()
        .unwrap_or(chrono_tz::UTC))
}

/// A typed setting (for the offline sweep and retention), with its default when unset.
pub async fn integer(state: &AppState, key: &str) -> Result<i64> {
    let settings = load(state, Table::Settings).await?;
    let known = KNOWN
        .iter()
        .find(|k| k.key == key)
        .expect("a known setting");
    Ok(settings
        .values
        .get(key)
        .and_then(Value::as_i64)
        .or_else(|| (known.default)().as_i64())
        .unwrap_or(0))
}

/// A text setting, with its default when unset.
pub async fn text(state: &AppState, key: &str) -> Result<String> {
    let settings = get(state).await?;
    let known = KNOWN
        .iter()
        .find(|k| k.key == key)
        .expect("a known setting");
    Ok(settings
        .value
        .values
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| (known.default)().as_str().map(str::to_owned))
        .unwrap_or_default())
}

/// The operator's preferences (not cached in memory: one reader, tiny table).
pub async fn get_preferences(state: &AppState) -> Result<Represented<Settings>> {
    let preferences = load(state, Table::Preferences).await?;
    let etag = document_etag(preferences.updated_at);
    Represented::json(preferences, etag)
}

/// Parses a PUT body into its keys and values; `updated_at` is read-only and ignored.
fn parse_changes(body: &[u8]) -> Result<BTreeMap<String, Value>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::Unprocessable(
            "the body must be a JSON object of keys to values".into(),
        ));
    };
    Ok(map.into_iter().filter(|(k, _)| k != "updated_at").collect())
}

/// Checks If-Match / If-Unmodified-Since of a write against the current document.
fn check_preconditions(preconditions: &Preconditions, current: &Settings) -> Result<()> {
    let etag = document_etag(current.updated_at);
    let validators = Validators::new(Some(&etag), None);
    match preconditions.evaluate(&Method::PUT, &validators) {
        Precondition::Proceed => Ok(()),
        Precondition::NotModified | Precondition::Failed => Err(Error::PreconditionFailed),
    }
}

async fn put_document(
    state: &AppState,
    table: Table,
    preconditions: &Preconditions,
    changes: BTreeMap<String, Value>,
) -> Result<(Settings, Vec<String>)> {
    let now = db::now();
    let mut tx = state.db.begin_write().await?;
    // Read inside the write lock, so the precondition holds until the commit.
    let entries = db::key_values::all(&mut tx, table).await?;
    let updated_at = entries.iter().map(|e| e.updated_at).max().unwrap_or(0);
    let current: BTreeMap<String, Value> = entries
        .iter()
        .map(|e| {
            (
                e.key.clone(),
                serde_json::from_str(&e.value).unwrap_or(Value::Null),
            )
        })
        .collect();
    check_preconditions(
        preconditions,
        &Settings {
            values: current.clone(),
            updated_at: from_micros(updated_at),
        },
    )?;
    let changed: Vec<String> = changes
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    for key in &changed {
        db::key_values::put(
            &mut tx,
            table,
            key,
            &changes[key].to_string(),
            to_micros(now),
        )
        .await?;
    }
    let mut values = current;
    values.extend(changes);
    if table == Table::Preferences {
        let size = serde_json::to_vec(&values).map_or(usize::MAX, |v| v.len());
        if size > MAX_PREFERENCES_BYTES {
            return Err(Error::PayloadTooLarge {
                limit: MAX_PREFERENCES_BYTES as u64,
            });
        }
    }
    let document = Settings {
        values,
        updated_at: if changed.is_empty() {
            from_micros(updated_at)
        } else {
            now
        },
    };
    let mut logged = Vec::new();
    if table == Table::Settings && !changed.is_empty() {
        logged.push(
            log_event(
                &mut tx,
                Event::SettingsUpdated {
                    keys: changed.clone(),
                    updated_at: now,
                    etag: document_etag(now).to_string(),
                },
                to_micros(now),
            )
            .await?,
        );
    }
    state.events.commit(tx, logged).await?;
    Ok((document, changed))
}

/// `PUT /api/settings`: validates every key, honours If-Match, logs `settings_updated` with
/// the keys that really changed.
pub async fn put(
    state: &AppState,
    preconditions: &Preconditions,
    body: &[u8],
) -> Result<Represented<Settings>> {
    let changes = parse_changes(body)?;
    for (key, value) in &changes {
        let known = KNOWN.iter().find(|k| k.key == key).ok_or_else(|| {
            let names: Vec<_> = KNOWN.iter().map(|k| k.key).collect();
            Error::Unprocessable(format!(
                "unknown setting {key:?}; settings are {}",
                names.join(", ")
            ))
        })?;
        if !(known.check)(value) {
            return Err(Error::Unprocessable(format!(
                "{key} must be {}",
                known.expects
            )));
        }
    }
    let retention_changed = changes.keys().any(|k| k.starts_with("retention_"));
    let (settings, _) = put_document(state, Table::Settings, preconditions, changes).await?;
    if retention_changed {
        state.storage.wake_retention();
    }
    let etag = document_etag(settings.updated_at);
    Represented::json(settings, etag)
}

/// `PUT /api/preferences`: a JSON object whose whole document stays within 64 KiB; known
/// keys are checked; honours If-Match.
pub async fn put_preferences(
    state: &AppState,
    preconditions: &Preconditions,
    body: &[u8],
) -> Result<Represented<Settings>> {
    if body.len() > MAX_PREFERENCES_BYTES {
        return Err(Error::PayloadTooLarge {
            limit: MAX_PREFERENCES_BYTES as u64,
        });
    }
    let changes = parse_changes(body)?;
    if let Some(key) = changes.keys().find(|k| k.is_empty() || k.len() > 100) {
        return Err(Error::Unprocessable(format!(
            "preference key {key:?} must be 1 to 100 bytes"
        )));
    }
    for known in KNOWN_PREFERENCES {
        if let Some(value) = changes.get(known.key) {
            if !(known.check)(value) {
                return Err(Error::Unprocessable(format!(
                    "{} must be {}",
                    known.key, known.expects
                )));
            }
        }
    }
    let (preferences, _) = put_document(state, Table::Preferences, preconditions, changes).await?;
    let etag = document_etag(preferences.updated_at);
    Represented::json(preferences, etag)
}
