//! Cache-Control (RFC 9111 §5.2, RFC 8246 `immutable`, RFC 5861 stale extensions), what a
//! shared cache may store (RFC 9111 §3), and how long it stays fresh (§4.2).
//!
//! The parser is lenient as §5.2 asks of recipients: directive names are case-insensitive,
//! whitespace around commas and `=` is tolerated, arguments may be tokens or quoted strings,
//! unknown directives are kept as extensions, and the first occurrence of a duplicated
//! directive wins. A freshness directive whose argument is not an integer makes the response
//! stale, as §4.2.1 encourages. The builder and [`fmt::Display`] produce the canonical form
//! that every response of the system carries.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::syntax::{parse_digits_saturating, parse_quoted_string, split_list, trim_ows};

/// The greatest delta-seconds a cache must be able to represent (RFC 9111 §1.2.2); larger
/// values are taken as this.
pub const DELTA_SECONDS_MAX: u64 = 2_147_483_648;

/// The directives of one Cache-Control field (request or response).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age=N` (§5.2.1.1, §5.2.2.1).
    pub max_age: Option<Duration>,
    /// `s-maxage=N` (§5.2.2.10): overrides max-age for shared caches.
    pub s_maxage: Option<Duration>,
    /// `no-cache` (§5.2.1.4, §5.2.2.4); with field names when qualified.
    pub no_cache: Option<Vec<String>>,
    /// `no-store` (§5.2.1.5, §5.2.2.5).
    pub no_store: bool,
    /// `private` (§5.2.2.7); with field names when qualified.
    pub private: Option<Vec<String>>,
    /// `public` (§5.2.2.9).
    pub public: bool,
    /// `must-revalidate` (§5.2.2.2).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (§5.2.2.8).
    pub proxy_revalidate: bool,
    /// `must-understand` (§5.2.2.3).
    pub must_understand: bool,
    /// `no-transform` (§5.2.1.6, §5.2.2.6).
    pub no_transform: bool,
    /// `immutable` (RFC 8246): the response will not change while fresh; do not revalidate it
    /// on reload.
    pub immutable: bool,
    /// `stale-while-revalidate=N` (RFC 5861 §3).
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error=N` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
    /// Request `max-stale[=N]` (§5.2.1.2); `Some(None)` accepts any staleness.
    pub max_stale: Option<Option<Duration>>,
    /// Request `min-fresh=N` (§5.2.1.3).
    pub min_fresh: Option<Duration>,
    /// Request `only-if-cached` (§5.2.1.7).
    pub only_if_cached: bool,
    /// Directives this parser does not know, with their arguments (§5.2.3).
    pub extensions: Vec<(String, Option<String>)>,
}

/// A directive's argument: a `delta-seconds`, a field-name list or nothing.
fn delta_seconds(arg: Option<&str>) -> Duration {
    // §4.2.1: invalid freshness information is best treated as stale, i.e. zero.
    let secs = arg
        .and_then(|a| parse_digits_saturating(a.as_bytes()))
        .unwrap_or(0)
        .min(DELTA_SECONDS_MAX);
    Duration::from_secs(secs)
}

/// The field names qualifying `no-cache` or `private`. Field names are tokens (RFC 9110
/// §5.1); members that are not are dropped, which leaves the directive unqualified, i.e. at its
/// most restrictive (the whole response is no-cache or private).
fn field_names(arg: Option<&str>) -> Vec<String> {
    arg.map(|a| {
        split_list(a.as_bytes())
            .into_iter()
            .filter(|n| crate::syntax::is_token(n))
            .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
            .collect()
    })
    .unwrap_or_default()
}

/// Splits `name[=value]`, unquoting a quoted value. `None` for a malformed directive.
fn parse_directive(item: &[u8]) -> Option<(String, Option<String>)> {
    let (name, arg) = match item.iter().position(|&b| b == b'=') {
        Some(eq) => (trim_ows(&item[..eq]), Some(trim_ows(&item[eq + 1..]))),
        None => (item, None),
    };
    if !crate::syntax::is_token(name) {
        return None;
    }
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let arg = match arg {
        None => None,
        Some(a) if a.starts_with(b"\"") => {
            let (value, rest) = parse_quoted_string(a)?;
            if !rest.is_empty() {
                return None;
            }
            Some(String::from_utf8_lossy(&value).into_owned())
        }
        Some(a) if crate::syntax::is_token(a) => Some(String::from_utf8_lossy(a).into_owned()),
        Some(_) => return None,
    };
    Some((name, arg))
}

impl CacheControl {
    /// An empty set of directives, to build on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one field value. Malformed members are skipped; never fails.
    pub fn parse(value: &[u8]) -> Self {
        let mut cc = Self::default();
        cc.merge(value);
        cc
    }

    /// Parses every Cache-Control line of a header map as one list (RFC 9110 §5.3).
    /// `None` when the field is absent.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut lines = headers.get_all(header::CACHE_CONTROL).iter().peekable();
        lines.peek()?;
        let mut cc = Self::default();
        for line in lines {
            cc.merge(line.as_bytes());
        }
        Some(cc)
    }

    fn merge(&mut self, value: &[u8]) {
        let mut seen: Vec<String> = Vec::new();
        for item in split_list(value) {
            let Some((name, arg)) = parse_directive(item) else {
                continue;
            };
            // §4.2.1: with several values for a directive, the first occurrence is used.
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            let arg = arg.as_deref();
            match name.as_str() {
                "max-age" => self.max_age = self.max_age.or(Some(delta_seconds(arg))),
                "s-maxage" => self.s_maxage = self.s_maxage.or(Some(delta_seconds(arg))),
                "no-cache" => self.no_cache = Some(field_names(arg)),
                "no-store" => self.no_store = true,
                "private" => self.private = Some(field_names(arg)),
                "public" => self.public = true,
                "must-revalidate" => self.must_revalidate = true,
                "proxy-revalidate" => self.proxy_revalidate = true,
                "must-understand" => self.must_understand = true,
                "no-transform" => self.no_transform = true,
                "immutable" => self.immutable = true,
                "stale-while-revalidate" => self.stale_while_revalidate = Some(delta_seconds(arg)),
                "stale-if-error" => self.stale_if_error = Some(delta_seconds(arg)),
                "max-stale" => self.max_stale = Some(arg.map(|a| delta_seconds(Some(a)))),
                "min-fresh" => self.min_fresh = Some(delta_seconds(arg)),
                "only-if-cached" => self.only_if_cached = true,
                _ => self.extensions.push((name, arg.map(str::to_owned))),
            }
        }
    }

    /// Adds `public`.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// Adds `private`.
    pub fn private(mut self) -> Self {
        self.private = Some(Vec::new());
        self
    }

    /// Adds `no-cache`.
    pub fn no_cache(mut self) -> Self {
        self.no_cache = Some(Vec::new());
        self
    }

    /// Adds `no-store`.
    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }

    /// Adds `no-transform`.
    pub fn no_transform(mut self) -> Self {
        self.no_transform = true;
        self
    }

    /// Adds `must-revalidate`.
    pub fn must_revalidate(mut self) -> Self {
        self.must_revalidate = true;
        self
    }

    /// Adds `immutable`.
    pub fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }

    /// Sets `max-age`.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Sets `s-maxage`.
    pub fn s_maxage(mut self, age: Duration) -> Self {
        self.s_maxage = Some(age);
        self
    }

    /// Sets `stale-while-revalidate`.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = Some(window);
        self
    }

    /// Sets `stale-if-error`.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = Some(window);
        self
    }

    /// The directives as a header value, in canonical order.
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string())
            .expect("Cache-Control directives are tokens and quoted strings")
    }

    /// Whether `private` is present, qualified or not.
    pub fn is_private(&self) -> bool {
        self.private.is_some()
    }

    /// Whether `no-cache` is present, qualified or not.
    pub fn is_no_cache(&self) -> bool {
        self.no_cache.is_some()
    }
}

/// Writes `directive="name, name"`. Names are tokens (RFC 9111 §5.2.2.4, §5.2.2.7), which the
/// parser guarantees, so they need no escaping inside the quotes.
fn write_names(f: &mut fmt::Formatter<'_>, directive: &str, names: &[String]) -> fmt::Result {
    f.write_str(directive)?;
    if !names.is_empty() {
        write!(f, "=\"{}\"", names.join(", "))?;
    }
    Ok(())
}

impl fmt::Display for CacheControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if !std::mem::take(&mut first) {
                f.write_str(", ")?;
            }
            Ok(())
        };
        if self.public {
            sep(f)?;
            f.write_str("public")?;
        }
        if let Some(names) = &self.private {
            sep(f)?;
            write_names(f, "private", names)?;
        }
        if let Some(names) = &self.no_cache {
            sep(f)?;
            write_names(f, "no-cache", names)?;
        }
        let flags = [
            (self.no_store, "no-store"),
            (self.no_transform, "no-transform"),
            (self.must_revalidate, "must-revalidate"),
            (self.proxy_revalidate, "proxy-revalidate"),
            (self.must_understand, "must-understand"),
            (self.only_if_cached, "only-if-cached"),
        ];
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            sep(f)?;
            f.write_str(name)?;
        }
        let ages = [
            ("max-age", self.max_age),
            ("s-maxage", self.s_maxage),
            ("min-fresh", self.min_fresh),
        ];
        for (name, age) in ages {
            if let Some(age) = age {
                sep(f)?;
                write!(f, "{name}={}", age.as_secs())?;
            }
        }
        if let Some(max_stale) = self.max_stale {
            sep(f)?;
            f.write_str("max-stale")?;
            if let Some(age) = max_stale {
                write!(f, "={}", age.as_secs())?;
            }
        }
        if self.immutable {
            sep(f)?;
            f.write_str("immutable")?;
        }
        let windows = [
            ("stale-while-revalidate", self.stale_while_revalidate),
            ("stale-if-error", self.stale_if_error),
        ];
        for (name, window) in windows {
            if let Some(window) = window {
                sep(f)?;
                write!(f, "{name}={}", window.as_secs())?;
            }
        }
        for (name, arg) in &self.extensions {
            sep(f)?;
            f.write_str(name)?;
            if let Some(arg) = arg {
                if crate::syntax::is_token(arg.as_bytes()) {
                    write!(f, "={arg}")?;
                } else {
                    let escaped = arg.replace('\\', "\\\\").replace('"', "\\\"");
                    write!(f, "=\"{escaped}\"")?;
                }
            }
        }
        Ok(())
    }
}

/// The directives a shared cache follows for one response.
///
/// RFC 9213 §2.1: when the response carries a valid, non-empty targeted field of this cache
/// (`CDN-Cache-Control`, [`crate::targeted::TARGET_LIST`]), its directives are the whole
/// policy, and Cache-Control and Expires are ignored; otherwise Cache-Control (and Expires).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedDirectives {
    /// The directives in force.
    pub cc: CacheControl,
    /// Whether they came from a targeted field (Expires is then ignored).
    pub targeted: bool,
}

impl SharedDirectives {
    /// The directives in force for a response's fields.
    pub fn of(response_headers: &HeaderMap) -> Self {
        match crate::targeted::directives(response_headers) {
            Some(cc) => Self { cc, targeted: true },
            None => Self {
                cc: CacheControl::from_headers(response_headers).unwrap_or_default(),
                targeted: false,
            },
        }
    }

    /// `no-cache` without field names: every reuse must be validated (RFC 9111 §5.2.2.4).
    /// With field names, only those fields must not be reused, and [`stored_fields`] drops
    /// them.
    pub fn no_cache(&self) -> bool {
        self.cc.no_cache.as_ref().is_some_and(Vec::is_empty)
    }

    /// `private` without field names: a shared cache must not store the response (RFC 9111
    /// §5.2.2.7). With field names, only those fields are withheld, by [`stored_fields`].
    pub fn private(&self) -> bool {
        self.cc.private.as_ref().is_some_and(Vec::is_empty)
    }
}

/// Why a shared cache may not store a response (RFC 9111 §3), or `Storable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storability {
    /// The response may be stored and reused by a shared cache.
    Storable,
    /// Only GET responses are stored by this cache (§3: the method must be understood).
    MethodNotCacheable,
    /// 206, 304 and 1xx are not stored by this cache (§3, §3.4).
    StatusNotCacheable,
    /// `no-store` in the request or the response (§5.2.1.5, §5.2.2.5).
    NoStore,
    /// `private` (§5.2.2.7): for one user's cache only.
    Private,
    /// The request carried Authorization and the response did not allow sharing (§3.5).
    Authorization,
    /// The response sets a cookie: one user's state, never shared.
    SetCookie,
    /// `Vary: *` (§4.1): no later request can ever match it, so it is not kept.
    Vary,
    /// `must-understand` on a status this cache does not implement (§5.2.2.3).
    MustUnderstand,
    /// Neither explicit freshness nor a heuristically cacheable status (§3, §4.2.2).
    NoFreshnessInformation,
}

/// Status codes "heuristically cacheable" by default (RFC 9110 §15.1).
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Whether `Vary` says no request can ever match a stored response (`Vary: *`, §4.1).
fn varies_on_anything(response_headers: &HeaderMap) -> bool {
    response_headers
        .get_all(header::VARY)
        .iter()
        .any(|v| split_list(v.as_bytes()).iter().any(|m| *m == b"*"))
}

/// Decides whether a shared cache may store this response to this request (RFC 9111 §3, with
/// RFC 9213's targeted directives, plus the system's rule: no Set-Cookie). Responses that vary
/// are storable: the cache keys them by their selecting request fields ([`crate::vary`]).
pub fn shared_storability(
    method: &Method,
    request_headers: &HeaderMap,
    status: StatusCode,
    response_headers: &HeaderMap,
) -> Storability {
    if method != Method::GET {
        return Storability::MethodNotCacheable;
    }
    let request_cc = CacheControl::from_headers(request_headers).unwrap_or_default();
    let directives = SharedDirectives::of(response_headers);
    let cc = &directives.cc;
    // §3: a final status; this cache does not combine partial content (§3.4) or store 304s.
    let understood = status.is_success()
        || status.is_redirection()
        || status.is_client_error()
        || status.is_server_error();
    if !understood || status == StatusCode::PARTIAL_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Storability::StatusNotCacheable;
    }
    if cc.must_understand && !is_heuristically_cacheable(status) {
        return Storability::MustUnderstand;
    }
    // §5.2.2.3: with must-understand, a cache that implements the status's caching rules
    // (those of RFC 9110 §15.1 it stores by default) should ignore the response's no-store.
    let understood = cc.must_understand && is_heuristically_cacheable(status);
    if request_cc.no_store || (cc.no_store && !understood) {
        return Storability::NoStore;
    }
    if directives.private() {
        return Storability::Private;
    }
    // §3.5: a response to a request with Authorization is shared only when the response says
    // so with public, s-maxage or must-revalidate.
    if request_headers.contains_key(header::AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Storability::Authorization;
    }
    if response_headers.contains_key(header::SET_COOKIE) {
        return Storability::SetCookie;
    }
    if varies_on_anything(response_headers) {
        return Storability::Vary;
    }
    let explicit = cc.public
        || cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || (!directives.targeted && response_headers.contains_key(header::EXPIRES));
    if !explicit && !is_heuristically_cacheable(status) {
        return Storability::NoFreshnessInformation;
    }
    Storability::Storable
}

fn http_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    crate::syntax::parse_http_date(headers.get(name)?.as_bytes())
}

/// The most a heuristic freshness lifetime may be (RFC 9111 §4.2.2 leaves the bound to the
/// cache; a day keeps a forgotten Last-Modified from pinning an old copy for months).
pub const HEURISTIC_FRESHNESS_MAX: Duration = Duration::from_secs(86_400);

/// The heuristic freshness lifetime of a response without explicit expiration (RFC 9111
/// §4.2.2): a tenth of the time since Last-Modified (at Date), at most
/// [`HEURISTIC_FRESHNESS_MAX`], for heuristically cacheable statuses and `public` responses;
/// zero otherwise.
pub fn heuristic_freshness(status: StatusCode, response_headers: &HeaderMap) -> Duration {
    SharedDirectives::of(response_headers).heuristic_freshness(status, response_headers)
}

impl SharedDirectives {
    /// [`heuristic_freshness`] with these directives (read once by the caller).
    fn heuristic_freshness(&self, status: StatusCode, response_headers: &HeaderMap) -> Duration {
        if !(is_heuristically_cacheable(status) || self.cc.public) {
            return Duration::ZERO;
        }
        match (
            http_date(response_headers, header::LAST_MODIFIED),
            http_date(response_headers, header::DATE),
        ) {
            (Some(modified), Some(date)) => (date.duration_since(modified).unwrap_or_default()
                / 10)
                .min(HEURISTIC_FRESHNESS_MAX),
            _ => Duration::ZERO,
        }
    }

    /// [`shared_freshness_lifetime`] with these directives (read once by the caller).
    pub fn freshness_lifetime(&self, status: StatusCode, response_headers: &HeaderMap) -> Duration {
        if let Some(age) = self.cc.s_maxage.or(self.cc.max_age) {
            return age;
        }
        if !self.targeted {
            let mut expires = response_headers.get_all(header::EXPIRES).iter();
            if let Some(first) = expires.next() {
                // Several Expires lines are no valid date either.
                let at = crate::syntax::parse_http_date(first.as_bytes())
                    .filter(|_| expires.next().is_none());
                return match (at, http_date(response_headers, header::DATE)) {
                    (Some(at), Some(date)) => at.duration_since(date).unwrap_or_default(),
                    _ => Duration::ZERO,
                };
            }
        }
        self.heuristic_freshness(status, response_headers)
    }

    /// Whether serving stale is forbidden in a shared cache (RFC 9111 §4.2.4): `no-cache`,
    /// `must-revalidate`, `proxy-revalidate`, or `s-maxage` (which implies proxy-revalidate).
    fn stale_forbidden(&self) -> bool {
        let cc = &self.cc;
        self.no_cache() || cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some()
    }

    /// Whether a stale response with these directives may be served within `window` (RFC
    /// 5861): its staleness at `age` is within it, and nothing forbids serving stale.
    fn within_stale_window(
        &self,
        window: Option<Duration>,
        status: StatusCode,
        response_headers: &HeaderMap,
        age: Duration,
    ) -> bool {
        match window {
            Some(window) if !self.stale_forbidden() => {
                age.saturating_sub(self.freshness_lifetime(status, response_headers)) <= window
            }
            _ => false,
        }
    }
}

/// Freshness lifetime for a shared cache (RFC 9111 §4.2.1): `s-maxage`, else `max-age`, else
/// `Expires` minus `Date` (unless a targeted field is in force, RFC 9213 §2.1), else the
/// heuristic of §4.2.2 ([`heuristic_freshness`]). An invalid `Expires`, or one at or before
/// `Date`, means already expired (§5.3). A missing Date counts as expired too: the cache adds
/// Date on receipt (RFC 9110 §6.6.1) before it judges a stored response.
pub fn shared_freshness_lifetime(status: StatusCode, response_headers: &HeaderMap) -> Duration {
    SharedDirectives::of(response_headers).freshness_lifetime(status, response_headers)
}

/// The fields a shared cache stores of a response (RFC 9111 §3.1): all but the hop-by-hop
/// ones, Set-Cookie, and those named by `no-cache="…"` (which must not be reused without
/// validation, §5.2.2.4) or `private="…"` (which a shared cache must not store, §5.2.2.7).
pub fn stored_fields(response_headers: &HeaderMap) -> HeaderMap {
    let directives = SharedDirectives::of(response_headers);
    let mut stored = response_headers.clone();
    crate::forwarding::strip_hop_by_hop(&mut stored);
    stored.remove(header::SET_COOKIE);
    for names in [&directives.cc.no_cache, &directives.cc.private]
        .into_iter()
        .flatten()
    {
        for name in names {
            stored.remove(name.as_str());
        }
    }
    stored
}

/// A stored response's fields after a 304 validated it (RFC 9111 §4.3.4, §3.2): each field of
/// the 304 replaces the stored one, except the hop-by-hop fields and those §3.1 keeps out of
/// storage, Content-Length (the 304 has no body to measure) and Content-Encoding (which the
/// stored body depends on). The 304 vouches for the response now: without a Date of its own
/// it is dated `received` (RFC 9110 §6.6.1), and an Age the 304 does not repeat no longer
/// applies.
pub fn freshened_fields(
    stored: &HeaderMap,
    not_modified: &HeaderMap,
    received: SystemTime,
) -> HeaderMap {
    let mut update = stored_fields(not_modified);
    update.remove(header::CONTENT_LENGTH);
    update.remove(header::CONTENT_ENCODING);
    let mut fields = stored.clone();
    for name in update.keys() {
        fields.remove(name);
    }
    for (name, value) in update.iter() {
        fields.append(name.clone(), value.clone());
    }
    if !update.contains_key(header::DATE) {
        fields.insert(
            header::DATE,
            crate::conditional::last_modified_value(received),
        );
    }
    if !update.contains_key(header::AGE) {
        fields.remove(header::AGE);
    }
    fields
}

/// Whether a response to this request invalidates what a cache holds for its target URI and
/// its Location and Content-Location (RFC 9111 §4.4): an unsafe method (anything but GET,
/// HEAD, OPTIONS and TRACE, so unknown methods too) answered with a non-error status.
pub fn invalidates(method: &Method, status: StatusCode) -> bool {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method);
    !safe && (status.is_success() || status.is_redirection())
}

/// When and how a stored response was obtained, for computing its age (RFC 9111 §4.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseTiming {
    /// When the cache sent the request that this response answers.
    pub request_time: SystemTime,
    /// When the cache received the response.
    pub response_time: SystemTime,
}

/// The `Age` header value (RFC 9111 §5.1): delta-seconds. Of a list (`7200, 0`, or several
/// lines), the first member counts and the rest are discarded, as §5.1 says; an invalid value
/// (`abc`, `-1`, `1.5`) is ignored.
pub fn age_value(headers: &HeaderMap) -> Duration {
    headers
        .get(header::AGE)
        .and_then(|v| split_list(v.as_bytes()).first().copied())
        // Age takes no parameters; `7200;foo=bar` is read as its number.
        .and_then(|first| first.split(|&b| b == b';').next())
        .and_then(|first| parse_digits_saturating(trim_ows(first)))
        .map(|s| Duration::from_secs(s.min(DELTA_SECONDS_MAX)))
        .unwrap_or_default()
}

/// Current age of a stored response at `now` (RFC 9111 §4.2.3):
///
/// ```text
/// apparent_age = max(0, response_time - date_value)
/// response_delay = response_time - request_time
/// corrected_age_value = age_value + response_delay
/// corrected_initial_age = max(apparent_age, corrected_age_value)
/// resident_time = now - response_time
/// current_age = corrected_initial_age + resident_time
/// ```
pub fn current_age(
    response_headers: &HeaderMap,
    timing: ResponseTiming,
    now: SystemTime,
) -> Duration {
    let date = http_date(response_headers, header::DATE).unwrap_or(timing.response_time);
    let apparent_age = timing
        .response_time
        .duration_since(date)
        .unwrap_or_default();
    let response_delay = timing
        .response_time
        .duration_since(timing.request_time)
        .unwrap_or_default();
    let corrected_age_value = age_value(response_headers).saturating_add(response_delay);
    let corrected_initial_age = apparent_age.max(corrected_age_value);
    let resident_time = now.duration_since(timing.response_time).unwrap_or_default();
    corrected_initial_age.saturating_add(resident_time)
}

/// How a shared cache may use a stored response at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Fresh: serve it without contacting the origin (RFC 9111 §4.2).
    Fresh,
    /// Stale: validate with the origin first (§4.3).
    MustRevalidate,
}

/// Whether a stored response may be served as is: fresh, and not `no-cache` (§4, §5.2.2.4).
/// A response whose `Age` already exceeds its lifetime is stale from the start.
pub fn shared_reuse(status: StatusCode, response_headers: &HeaderMap, age: Duration) -> Reuse {
    let directives = SharedDirectives::of(response_headers);
    if directives.no_cache() || age >= directives.freshness_lifetime(status, response_headers) {
        Reuse::MustRevalidate
    } else {
        Reuse::Fresh
    }
}

/// RFC 5861 §3: a stale response may be served while it is revalidated in the background when
/// its staleness is within `stale-while-revalidate`.
pub fn may_serve_stale_while_revalidate(
    status: StatusCode,
    response_headers: &HeaderMap,
    age: Duration,
) -> bool {
    let directives = SharedDirectives::of(response_headers);
    directives.within_stale_window(
        directives.cc.stale_while_revalidate,
        status,
        response_headers,
        age,
    )
}

/// RFC 5861 §4: when the origin errs (5xx) or cannot be reached, a stale response may be
/// served when its staleness is within `stale-if-error`.
pub fn may_serve_stale_if_error(
    status: StatusCode,
    response_headers: &HeaderMap,
    age: Duration,
) -> bool {
    let directives = SharedDirectives::of(response_headers);
    directives.within_stale_window(directives.cc.stale_if_error, status, response_headers, age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn parses_response_directives() {
        let cc = CacheControl::parse(b"public, max-age=31536000, immutable");
        assert!(cc.public && cc.immutable);
        assert_eq!(cc.max_age, Some(SECS(31_536_000)));
        assert!(!cc.is_private() && !cc.no_store);
    }

    #[test]
    fn parsing_tolerates_case_spaces_and_quotes() {
        // RFC 9111 §5.2: names are case-insensitive; both token and quoted-string arguments
        // are accepted.
        let cc =
            CacheControl::parse(b"  MAX-AGE = \"60\" ,No-Cache=\"Set-Cookie, X-Foo\",,PRIVATE ");
        assert_eq!(cc.max_age, Some(SECS(60)));
        assert_eq!(cc.no_cache, Some(vec!["set-cookie".into(), "x-foo".into()]));
        assert_eq!(cc.private, Some(vec![]));
    }

    #[test]
    fn first_occurrence_wins_and_invalid_ages_are_stale() {
        // RFC 9111 §4.2.1.
        assert_eq!(
            CacheControl::parse(b"max-age=5, max-age=10").max_age,
            Some(SECS(5))
        );
        assert_eq!(CacheControl::parse(b"max-age=abc").max_age, Some(SECS(0)));
        assert_eq!(CacheControl::parse(b"max-age").max_age, Some(SECS(0)));
        assert_eq!(CacheControl::parse(b"max-age=-1").max_age, Some(SECS(0)));
    }

    #[test]
    fn huge_ages_are_capped_at_2_pow_31() {
        // RFC 9111 §1.2.2.
        let cc = CacheControl::parse(b"max-age=99999999999999999999");
        assert_eq!(cc.max_age, Some(SECS(DELTA_SECONDS_MAX)));
    }

    #[test]
    fn request_directives() {
        let cc = CacheControl::parse(b"max-stale, min-fresh=10, only-if-cached, no-store");
        assert_eq!(cc.max_stale, Some(None));
        assert_eq!(cc.min_fresh, Some(SECS(10)));
        assert!(cc.only_if_cached && cc.no_store);
        assert_eq!(
            CacheControl::parse(b"max-stale=30").max_stale,
            Some(Some(SECS(30)))
        );
    }

    #[test]
    fn unknown_directives_are_kept_as_extensions() {
        // RFC 9111 §5.2.3: unrecognised directives are ignored for semantics, kept for output.
        let cc = CacheControl::parse(b"community=\"UCI\", foo=bar, baz");
        assert_eq!(
            cc.extensions,
            vec![
                ("community".into(), Some("UCI".into())),
                ("foo".into(), Some("bar".into())),
                ("baz".into(), None)
            ]
        );
        assert_eq!(cc.to_string(), "community=UCI, foo=bar, baz");
    }

    #[test]
    fn malformed_members_are_skipped() {
        let cc = CacheControl::parse(b"max-age=\"5\"x, =x, a b, no-store");
        assert!(cc.no_store);
        assert_eq!(cc.max_age, None);
        assert!(cc.extensions.is_empty());
        // An unterminated quote runs to the end of the field: nothing after it is a directive.
        let cc = CacheControl::parse(b"public, private=\"a, no-store");
        assert!(cc.public && !cc.no_store);
        let cc = CacheControl::parse(b"\x01, public");
        assert!(cc.public);
    }

    #[test]
    fn qualified_directives_round_trip_and_never_lose_their_restriction() {
        // Found by fuzzing: names with quotes or backslashes used to be written back unescaped
        // and the directive vanished on re-parsing (a private response became shareable).
        for input in [
            &br#"no-cache="\\""#[..],
            br#"private="\"""#,
            br#"private="a, b\"c""#,
        ] {
            let cc = CacheControl::parse(input);
            let again = CacheControl::parse(cc.to_string().as_bytes());
            assert_eq!(again, cc, "{}", String::from_utf8_lossy(input));
        }
        let cc = CacheControl::parse(br#"private="\"""#);
        assert!(cc.is_private());
        assert_eq!(cc.private, Some(vec![]));
        let cc = CacheControl::parse(br#"no-cache="Set-Cookie, x\"y""#);
        assert_eq!(cc.no_cache, Some(vec!["set-cookie".to_owned()]));
    }

    #[test]
    fn current_age_saturates_instead_of_overflowing() {
        let t0 = SystemTime::UNIX_EPOCH;
        let timing = ResponseTiming {
            request_time: t0,
            response_time: t0 + SECS(u64::MAX / 4),
        };
        let h = headers(&[("age", "99999999999999999999")]);
        let age = current_age(&h, timing, t0 + SECS(u64::MAX / 2));
        assert!(age >= SECS(u64::MAX / 4));
    }

    #[test]
    fn lines_combine() {
        let h = headers(&[("cache-control", "public"), ("cache-control", "max-age=5")]);
        let cc = CacheControl::from_headers(&h).unwrap();
        assert!(cc.public);
        assert_eq!(cc.max_age, Some(SECS(5)));
        assert!(CacheControl::from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn builder_formats_canonically() {
        let cc = CacheControl::new()
            .immutable()
            .max_age(SECS(31_536_000))
            .public();
        assert_eq!(cc.to_string(), "public, max-age=31536000, immutable");
        assert_eq!(
            CacheControl::new().private().max_age(SECS(300)).to_string(),
            "private, max-age=300"
        );
        assert_eq!(
            CacheControl::new().no_cache().no_transform().to_string(),
            "no-cache, no-transform"
        );
        assert_eq!(
            CacheControl::new()
                .public()
                .max_age(SECS(0))
                .stale_while_revalidate(SECS(60))
                .stale_if_error(SECS(86400))
                .to_string(),
            "public, max-age=0, stale-while-revalidate=60, stale-if-error=86400"
        );
        assert_eq!(
            CacheControl::parse(b"no-cache=\"a, b\"").to_string(),
            "no-cache=\"a, b\""
        );
        assert_eq!(CacheControl::new().to_header_value(), "");
    }

    fn store(req: &[(&str, &str)], status: u16, resp: &[(&str, &str)]) -> Storability {
        shared_storability(
            &Method::GET,
            &headers(req),
            StatusCode::from_u16(status).unwrap(),
            &headers(resp),
        )
    }

    #[test]
    fn storability_table() {
        use Storability::*;
        // RFC 9111 §3 and the system's additions.
        type Fields<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Fields, u16, Fields, Storability)] = &[
            (
                &[],
                200,
                &[("cache-control", "public, max-age=60")],
                Storable,
            ),
            (&[], 200, &[("cache-control", "max-age=60")], Storable),
            (&[], 200, &[], Storable), // heuristically cacheable status, revalidated every time
            (&[], 200, &[("cache-control", "no-cache")], Storable),
            (&[], 404, &[], Storable),
            (&[], 201, &[], NoFreshnessInformation),
            (&[], 201, &[("cache-control", "max-age=5")], Storable),
            (
                &[],
                302,
                &[("expires", "Thu, 01 Dec 1994 16:00:00 GMT")],
                Storable,
            ),
            (
                &[],
                206,
                &[("cache-control", "public, max-age=60")],
                StatusNotCacheable,
            ),
            (
                &[],
                304,
                &[("cache-control", "public, max-age=60")],
                StatusNotCacheable,
            ),
            (&[], 200, &[("cache-control", "no-store")], NoStore),
            (
                &[("cache-control", "no-store")],
                200,
                &[("cache-control", "max-age=60")],
                NoStore,
            ),
            (
                &[],
                200,
                &[("cache-control", "private, max-age=300")],
                Private,
            ),
            // §5.2.2.7: qualified, only the named fields are withheld.
            (
                &[],
                200,
                &[("cache-control", "private=\"x-user\", max-age=300")],
                Storable,
            ),
            (
                &[("authorization", "Bearer t")],
                200,
                &[("cache-control", "max-age=60")],
                Authorization,
            ),
            (
                &[("authorization", "Bearer t")],
                200,
                &[("cache-control", "public, max-age=60")],
                Storable,
            ),
            (
                &[("authorization", "Bearer t")],
                200,
                &[("cache-control", "s-maxage=60")],
                Storable,
            ),
            (
                &[("authorization", "Bearer t")],
                200,
                &[("cache-control", "must-revalidate, max-age=60")],
                Storable,
            ),
            (
                &[],
                200,
                &[
                    ("cache-control", "public, max-age=60"),
                    ("set-cookie", "a=b"),
                ],
                SetCookie,
            ),
            (
                &[],
                200,
                &[
                    ("cache-control", "public, max-age=60"),
                    ("vary", "accept-encoding"),
                ],
                Storable,
            ),
            (
                &[],
                200,
                &[
                    ("cache-control", "public, max-age=60"),
                    ("vary", "accept, *"),
                ],
                Vary,
            ),
            (&[], 500, &[("cache-control", "max-age=60")], Storable),
            (&[], 500, &[("etag", "\"e\"")], NoFreshnessInformation),
            (&[], 410, &[], Storable),
            (&[], 302, &[], NoFreshnessInformation),
            (
                &[],
                200,
                &[("cache-control", "public, max-age=60"), ("vary", "")],
                Storable,
            ),
            (
                &[],
                299,
                &[("cache-control", "must-understand, no-store")],
                MustUnderstand,
            ),
            // §5.2.2.3: a status this cache implements, so no-store is ignored.
            (
                &[],
                200,
                &[("cache-control", "max-age=60, must-understand, no-store")],
                Storable,
            ),
            (
                &[("cache-control", "no-store")],
                200,
                &[("cache-control", "max-age=60, must-understand, no-store")],
                NoStore,
            ),
        ];
        for (req, status, resp, expected) in cases {
            assert_eq!(
                store(req, *status, resp),
                *expected,
                "{req:?} {status} {resp:?}"
            );
        }
        assert_eq!(
            shared_storability(
                &Method::POST,
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[("cache-control", "max-age=5")])
            ),
            MethodNotCacheable
        );
        assert_eq!(
            shared_storability(
                &Method::HEAD,
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[("cache-control", "max-age=5")])
            ),
            MethodNotCacheable
        );
    }

    #[test]
    fn freshness_lifetime_precedence() {
        // RFC 9111 §4.2.1: s-maxage, then max-age, then Expires - Date.
        let date = "Thu, 01 Dec 1994 16:00:00 GMT";
        let expires = "Thu, 01 Dec 1994 16:10:00 GMT";
        let cases: &[(&[(&str, &str)], u64)] = &[
            (&[("cache-control", "max-age=60, s-maxage=30")], 30),
            (
                &[
                    ("cache-control", "max-age=60"),
                    ("expires", expires),
                    ("date", date),
                ],
                60,
            ),
            (&[("expires", expires), ("date", date)], 600),
            (&[("expires", date), ("date", expires)], 0), // expires before date
            (&[("expires", "0"), ("date", date)], 0),     // invalid Expires: already expired
            (&[("expires", expires)], 0),
            (
                &[("expires", expires), ("expires", expires), ("date", date)],
                0,
            ),
            // RFC 9110 §5.6.7: dates in the obsolete forms and in any case.
            (
                &[
                    ("expires", "Thursday, 01-Dec-94 16:10:00 GMT"),
                    ("date", date),
                ],
                600,
            ),
            (
                &[("expires", "Thu Dec  1 16:10:00 1994"), ("date", date)],
                600,
            ),
            (
                &[("expires", "thu, 01 dec 1994 16:10:00 gmt"), ("date", date)],
                600,
            ),
            (&[], 0),
        ];
        for (h, secs) in cases {
            assert_eq!(
                shared_freshness_lifetime(StatusCode::OK, &headers(h)),
                SECS(*secs),
                "{h:?}"
            );
        }
    }

    #[test]
    fn current_age_follows_section_4_2_3() {
        let t0 = httpdate::parse_http_date("Thu, 01 Dec 1994 16:00:00 GMT").unwrap();
        let timing = ResponseTiming {
            request_time: t0,
            response_time: t0 + SECS(2),
        };
        // Date says the response was generated at t0; Age says an upstream cache held it 10 s.
        let h = headers(&[("date", "Thu, 01 Dec 1994 16:00:00 GMT"), ("age", "10")]);
        // corrected_initial_age = max(apparent 2, 10 + delay 2) = 12; resident 30 -> 42.
        assert_eq!(current_age(&h, timing, t0 + SECS(32)), SECS(42));
        // A Date in the future gives no negative apparent age.
        let h = headers(&[("date", "Thu, 01 Dec 1994 17:00:00 GMT")]);
        assert_eq!(current_age(&h, timing, t0 + SECS(2)), SECS(2));
        // Invalid Age is ignored.
        let h = headers(&[("age", "ten")]);
        assert_eq!(current_age(&h, timing, t0 + SECS(2)), SECS(2));
    }

    #[test]
    fn reuse_fresh_and_stale() {
        let ok = StatusCode::OK;
        let h = headers(&[("cache-control", "public, max-age=60")]);
        assert_eq!(shared_reuse(ok, &h, SECS(59)), Reuse::Fresh);
        assert_eq!(shared_reuse(ok, &h, SECS(60)), Reuse::MustRevalidate);
        let h = headers(&[("cache-control", "public, max-age=60, no-cache")]);
        assert_eq!(shared_reuse(ok, &h, SECS(0)), Reuse::MustRevalidate);
        // §5.2.2.4: qualified no-cache leaves the response reusable (without those fields).
        let h = headers(&[("cache-control", "max-age=60, no-cache=\"x-a\"")]);
        assert_eq!(shared_reuse(ok, &h, SECS(0)), Reuse::Fresh);
    }

    #[test]
    fn stale_windows_of_rfc_5861() {
        let h = headers(&[(
            "cache-control",
            "max-age=60, stale-while-revalidate=30, stale-if-error=600",
        )]);
        let ok = StatusCode::OK;
        assert!(may_serve_stale_while_revalidate(ok, &h, SECS(90)));
        assert!(!may_serve_stale_while_revalidate(ok, &h, SECS(91)));
        assert!(may_serve_stale_if_error(ok, &h, SECS(660)));
        assert!(!may_serve_stale_if_error(ok, &h, SECS(661)));
        let none = headers(&[("cache-control", "max-age=60")]);
        assert!(!may_serve_stale_if_error(ok, &none, SECS(61)));
    }

    #[test]
    fn revalidation_directives_forbid_stale() {
        // RFC 9111 §4.2.4: must-revalidate, proxy-revalidate, s-maxage and no-cache forbid
        // serving stale from a shared cache.
        for cc in [
            "max-age=1, must-revalidate, stale-if-error=600",
            "max-age=1, proxy-revalidate, stale-if-error=600",
            "s-maxage=1, stale-if-error=600",
            "no-cache, stale-if-error=600",
        ] {
            let h = headers(&[("cache-control", cc)]);
            assert!(
                !may_serve_stale_if_error(StatusCode::OK, &h, SECS(5)),
                "{cc}"
            );
            assert!(
                !may_serve_stale_while_revalidate(StatusCode::OK, &h, SECS(5)),
                "{cc}"
            );
        }
    }

    #[test]
    fn rfc9111_4_2_2_heuristic_freshness_from_last_modified() {
        let date = "Thu, 01 Dec 1994 16:00:00 GMT";
        // Modified 1000 s before Date: fresh for a tenth of that.
        let h = headers(&[
            ("last-modified", "Thu, 01 Dec 1994 15:43:20 GMT"),
            ("date", date),
        ]);
        for status in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(shared_freshness_lifetime(status, &h), SECS(100), "{status}");
            assert_eq!(shared_reuse(status, &h, SECS(99)), Reuse::Fresh, "{status}");
        }
        // Not for statuses that are not heuristically cacheable, unless public.
        for status in [201, 302, 500] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(shared_freshness_lifetime(status, &h), SECS(0), "{status}");
        }
        let mut public = h.clone();
        public.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
        assert_eq!(
            shared_freshness_lifetime(StatusCode::FOUND, &public),
            SECS(100)
        );
        // Never over explicit freshness, never above a day, never from a future date.
        let mut explicit = h.clone();
        explicit.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert_eq!(
            shared_freshness_lifetime(StatusCode::OK, &explicit),
            SECS(5)
        );
        let old = headers(&[
            ("last-modified", "Sat, 01 Dec 1984 16:00:00 GMT"),
            ("date", date),
        ]);
        assert_eq!(
            shared_freshness_lifetime(StatusCode::OK, &old),
            HEURISTIC_FRESHNESS_MAX
        );
        let future = headers(&[
            ("last-modified", "Thu, 01 Dec 1994 17:00:00 GMT"),
            ("date", date),
        ]);
        assert_eq!(shared_freshness_lifetime(StatusCode::OK, &future), SECS(0));
        // An invalid Expires is explicit (already expired): no heuristic then.
        let mut expired = h.clone();
        expired.insert(header::EXPIRES, HeaderValue::from_static("0"));
        assert_eq!(shared_freshness_lifetime(StatusCode::OK, &expired), SECS(0));
    }

    #[test]
    fn rfc9111_4_2_3_an_age_beyond_the_lifetime_is_stale_on_arrival() {
        let t0 = httpdate::parse_http_date("Thu, 01 Dec 1994 16:00:00 GMT").unwrap();
        let timing = ResponseTiming {
            request_time: t0,
            response_time: t0,
        };
        let h = headers(&[
            ("date", "Thu, 01 Dec 1994 16:00:00 GMT"),
            ("cache-control", "max-age=10"),
            ("age", "15"),
        ]);
        let age = current_age(&h, timing, t0);
        assert_eq!(age, SECS(15));
        assert_eq!(shared_reuse(StatusCode::OK, &h, age), Reuse::MustRevalidate);
        let h = headers(&[("cache-control", "max-age=3600"), ("age", "15")]);
        assert_eq!(
            shared_reuse(StatusCode::OK, &h, current_age(&h, timing, t0)),
            Reuse::Fresh
        );
    }

    #[test]
    fn rfc9111_3_1_qualified_no_cache_and_private_fields_are_not_stored() {
        let h = headers(&[
            (
                "cache-control",
                "max-age=60, no-cache=\"x-session\", private=\"X-User\"",
            ),
            ("x-session", "s"),
            ("x-user", "u"),
            ("x-other", "o"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("set-cookie", "a=b"),
        ]);
        let stored = stored_fields(&h);
        let mut names: Vec<_> = stored.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["cache-control", "x-other"]);
        // Also when the targeted field names them.
        let h = headers(&[
            ("cdn-cache-control", "max-age=60, private=\"x-user\""),
            ("x-user", "u"),
        ]);
        assert!(!stored_fields(&h).contains_key("x-user"));
    }

    #[test]
    fn rfc9111_3_2_a_304_updates_the_stored_fields_but_not_content_length() {
        let received = httpdate::parse_http_date("Thu, 01 Dec 1994 16:05:00 GMT").unwrap();
        let stored = headers(&[
            ("content-length", "10"),
            ("content-type", "text/plain"),
            ("content-encoding", "gzip"),
            ("etag", "\"a\""),
            ("x-kept", "1"),
            ("x-updated", "old"),
            ("date", "Thu, 01 Dec 1994 16:00:00 GMT"),
            ("age", "30"),
        ]);
        let not_modified = headers(&[
            ("content-length", "0"),
            ("content-encoding", "br"),
            ("x-updated", "new"),
            ("x-updated", "newer"),
            ("content-type", "text/html"),
            ("connection", "close"),
            ("cache-control", "max-age=5, private=\"x-secret\""),
            ("x-secret", "s"),
        ]);
        let fields = freshened_fields(&stored, &not_modified, received);
        assert_eq!(fields["content-length"], "10");
        assert_eq!(fields["content-encoding"], "gzip");
        assert_eq!(fields["content-type"], "text/html");
        assert_eq!(fields["x-kept"], "1");
        let updated: Vec<_> = fields.get_all("x-updated").iter().collect();
        assert_eq!(updated, ["new", "newer"]);
        assert_eq!(fields["cache-control"], "max-age=5, private=\"x-secret\"");
        assert!(!fields.contains_key("connection") && !fields.contains_key("x-secret"));
        // §4.3.4: the 304 has no Date: it is dated on receipt, and the old Age is gone.
        assert_eq!(fields["date"], "Thu, 01 Dec 1994 16:05:00 GMT");
        assert!(!fields.contains_key("age"));
        let dated = headers(&[("date", "Thu, 01 Dec 1994 16:04:00 GMT"), ("age", "3")]);
        let fields = freshened_fields(&stored, &dated, received);
        assert_eq!(fields["date"], "Thu, 01 Dec 1994 16:04:00 GMT");
        assert_eq!(fields["age"], "3");
    }

    #[test]
    fn rfc9111_4_4_unsafe_methods_invalidate_on_success() {
        let ok = StatusCode::OK;
        for method in ["POST", "PUT", "DELETE", "PATCH", "FROB"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert!(invalidates(&method, ok), "{method}");
            assert!(invalidates(&method, StatusCode::SEE_OTHER), "{method}");
            assert!(!invalidates(&method, StatusCode::NOT_FOUND), "{method}");
            assert!(!invalidates(&method, StatusCode::BAD_GATEWAY), "{method}");
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(!invalidates(&method, ok), "{method}");
        }
    }

    #[test]
    fn age_value_parsing() {
        assert_eq!(age_value(&headers(&[("age", "15")])), SECS(15));
        assert_eq!(age_value(&headers(&[("age", "-1")])), SECS(0));
        // RFC 9111 §5.1: of a list, the first member.
        assert_eq!(age_value(&headers(&[("age", "7200, 0")])), SECS(7200));
        assert_eq!(age_value(&headers(&[("age", "0, 7200")])), SECS(0));
        assert_eq!(
            age_value(&headers(&[("age", "7200"), ("age", "0")])),
            SECS(7200)
        );
        assert_eq!(age_value(&headers(&[("age", "abc")])), SECS(0));
        assert_eq!(age_value(&headers(&[("age", "7200.0")])), SECS(0));
        assert_eq!(age_value(&headers(&[("age", "7200;foo=bar")])), SECS(7200));
        assert_eq!(age_value(&headers(&[])), SECS(0));
    }

    fn arb_cc() -> impl Strategy<Value = CacheControl> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(0u64..DELTA_SECONDS_MAX),
            proptest::option::of(0u64..DELTA_SECONDS_MAX),
            any::<bool>(),
            proptest::option::of(0u64..100_000),
            proptest::option::of(0u64..100_000),
        )
            .prop_map(
                |(public, private, no_cache, no_store, max_age, s_maxage, immutable, swr, sie)| {
                    CacheControl {
                        public,
                        private: private.then(Vec::new),
                        no_cache: no_cache.then(Vec::new),
                        no_store,
                        max_age: max_age.map(Duration::from_secs),
                        s_maxage: s_maxage.map(Duration::from_secs),
                        immutable,
                        stale_while_revalidate: swr.map(Duration::from_secs),
                        stale_if_error: sie.map(Duration::from_secs),
                        ..Default::default()
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn prop_format_parse_round_trip(cc in arb_cc()) {
            prop_assert_eq!(CacheControl::parse(cc.to_string().as_bytes()), cc);
        }

        #[test]
        fn prop_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = CacheControl::parse(&bytes);
        }

        #[test]
        fn prop_private_and_no_store_are_never_shared(cc in arb_cc()) {
            let mut h = HeaderMap::new();
            h.insert(header::CACHE_CONTROL, cc.to_header_value());
            let verdict = shared_storability(&Method::GET, &HeaderMap::new(), StatusCode::OK, &h);
            if cc.no_store || cc.private.as_ref().is_some_and(Vec::is_empty) {
                prop_assert_ne!(verdict, Storability::Storable);
            }
        }
    }
}
