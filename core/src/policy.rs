//! The decision matrix of DESIGN.md as data: each kind of content the system serves, and the
//! exact Cache-Control and validator it is served with.
//!
//! Every Cache-Control value the origin and the edge send comes from [`ContentKind::cache_control`],
//! so a literal such as `public, max-age=31536000, immutable` exists once, here.
//!
//! | content | kind | Cache-Control | Last-Modified, ranges |
//! |---|---|---|---|
//! | images, thumbnails, videos | [`ContentKind::ImmutableMedia`] | `public, max-age=31536000, immutable, stale-if-error=86400` | yes |
//! | media of private cameras only | [`ContentKind::PrivateMedia`] | `private, max-age=31536000, immutable` | yes |
//! | CSS, JS under hashed names | [`ContentKind::StaticAsset`] | `public, max-age=31536000, immutable` | no |
//! | settings, preferences | [`ContentKind::Settings`] | `private, max-age=300` | no |
//! | one camera, timelapse, video | [`ContentKind::EntityMetadata`] | `no-cache` | no |
//! | a camera's schedule (its agent's), anything shown to a signed-in person | [`ContentKind::PrivateMetadata`] | `private, no-cache` | no |
//! | lists of cameras, images, videos | [`ContentKind::Collection`] | `no-cache` | no |
//! | dashboard stats | [`ContentKind::Aggregate`] | `no-cache` | no |
//! | HTML pages | [`ContentKind::Page`] | `max-age=0, stale-if-error=86400` | no |
//! | the event stream | [`ContentKind::EventStream`] | `no-cache, no-transform` | no |
//! | health, metrics, cache stats | [`ContentKind::Operational`] | `no-store` | no |
//! | sign-in page, the session | [`ContentKind::Credentials`] | `private, no-store` | no |
//!
//! Which entity tag each kind carries (content hash, timestamp, composite, collection) is the
//! generator its service calls from [`crate::etag`]; [`crate::response::answer`] uses the
//! Last-Modified and ranges columns.

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderValue;

use crate::cache_control::CacheControl;

/// One year: the conventional "forever" of RFC 9111 §5.2.2.1 practice (and v4's value).
pub const IMMUTABLE_MAX_AGE: Duration = Duration::from_secs(31_536_000);

/// How long a client may reuse settings and preferences without asking (v4's five minutes).
pub const SETTINGS_MAX_AGE: Duration = Duration::from_secs(300);

/// How long a shared cache may keep serving a stored page or media file while the origin
/// fails (RFC 5861 §4): a day covers an origin restart, a database outage or a night's
/// network trouble at a camera site, and is short enough that nobody mistakes a stale page
/// for the live one for long (the pages show live state over SSE anyway).
pub const STALE_IF_ERROR: Duration = Duration::from_secs(86_400);

/// The kinds of content of the decision matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// Captured images, thumbnails and rendered videos: content-addressed, never change.
    ImmutableMedia,
    /// Media only signed-in people may see (every camera showing it is private): kept by the
    /// browser forever, never by a shared cache.
    PrivateMedia,
    /// CSS and JS served under content-hashed names: change only with a new name.
    StaticAsset,
    /// System settings and operator preferences: change in hours to days; one user's view.
    Settings,
    /// One camera, timelapse or video: changes on events; always revalidated.
    EntityMetadata,
    /// Metadata only its owner may read (a camera's schedule, for its agent): revalidated
    /// every time, never stored by a shared cache.
    PrivateMetadata,
    /// A list of cameras, images or videos: changes on events; always revalidated.
    Collection,
    /// Dashboard statistics: an aggregation; always revalidated, pushed live by SSE.
    Aggregate,
    /// Server-rendered HTML pages: always revalidated; kept current by SSE once loaded.
    Page,
    /// `text/event-stream`: never cached, never transformed (buffering breaks streaming).
    EventStream,
    /// Health, metrics and cache statistics: never stored anywhere.
    Operational,
    /// The sign-in page and a session's own state (they carry CSRF tokens): one person's,
    /// never stored anywhere.
    Credentials,
}

/// The policy of one kind of content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The directives sent with every response (200, 206 and 304 alike).
    pub cache_control: CacheControl,
    /// Whether `Last-Modified` is sent (and so If-Modified-Since honoured).
    pub last_modified: bool,
    /// Whether Range requests are answered with 206 (`Accept-Ranges: bytes`).
    pub ranges: bool,
}

impl ContentKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ContentKind; 12] = [
        ContentKind::ImmutableMedia,
        ContentKind::PrivateMedia,
        ContentKind::StaticAsset,
        ContentKind::Settings,
        ContentKind::EntityMetadata,
        ContentKind::PrivateMetadata,
        ContentKind::Collection,
        ContentKind::Aggregate,
        ContentKind::Page,
        ContentKind::EventStream,
        ContentKind::Operational,
        ContentKind::Credentials,
    ];

    /// The policy of this kind.
    pub fn policy(self) -> Policy {
        let immutable = || {
            CacheControl::new()
                .public()
                .max_age(IMMUTABLE_MAX_AGE)
                .immutable()
        };
        let media = || immutable().stale_if_error(STALE_IF_ERROR);
        let revalidate = || CacheControl::new().no_cache();
        let (cache_control, last_modified, ranges) = match self {
            ContentKind::ImmutableMedia => (media(), true, true),
            ContentKind::PrivateMedia => (
                CacheControl::new()
                    .private()
                    .max_age(IMMUTABLE_MAX_AGE)
                    .immutable(),
                true,
                true,
            ),
            ContentKind::StaticAsset => (immutable(), false, false),
            ContentKind::Settings => (
                CacheControl::new().private().max_age(SETTINGS_MAX_AGE),
                false,
                false,
            ),
            ContentKind::EntityMetadata => (revalidate(), false, false),
            ContentKind::PrivateMetadata => {
                (CacheControl::new().private().no_cache(), false, false)
            }
            ContentKind::Collection => (revalidate(), false, false),
            ContentKind::Aggregate => (revalidate(), false, false),
            // `max-age=0` rather than `no-cache`: both make every cache revalidate every time,
            // but `no-cache` forbids serving stale even when the origin is down (RFC 9111
            // §4.2.4), and a gallery that survives an origin outage is the point of the edge.
            ContentKind::Page => (
                CacheControl::new()
                    .max_age(Duration::ZERO)
                    .stale_if_error(STALE_IF_ERROR),
                false,
                false,
            ),
            ContentKind::EventStream => {
                (CacheControl::new().no_cache().no_transform(), false, false)
            }
            ContentKind::Operational => (CacheControl::new().no_store(), false, false),
            ContentKind::Credentials => (CacheControl::new().private().no_store(), false, false),
        };
        Policy {
            cache_control,
            last_modified,
            ranges,
        }
    }

    /// The kind of the same content shown to a signed-in person (or a bearer of the admin
    /// token): what only they may see is never stored by a shared cache. Media stays
    /// immutable (the browser keeps it); everything else is revalidated every time.
    pub fn signed_in(self) -> ContentKind {
        match self {
            ContentKind::ImmutableMedia | ContentKind::PrivateMedia => ContentKind::PrivateMedia,
            ContentKind::EntityMetadata
            | ContentKind::Collection
            | ContentKind::Aggregate
            | ContentKind::Page
            | ContentKind::PrivateMetadata => ContentKind::PrivateMetadata,
            other => other,
        }
    }

    /// The Cache-Control header value of this kind, built once per process.
    pub fn cache_control(self) -> HeaderValue {
        static IMMUTABLE_MEDIA: OnceLock<HeaderValue> = OnceLock::new();
        static PRIVATE_MEDIA: OnceLock<HeaderValue> = OnceLock::new();
        static STATIC_ASSET: OnceLock<HeaderValue> = OnceLock::new();
        static SETTINGS: OnceLock<HeaderValue> = OnceLock::new();
        static ENTITY_METADATA: OnceLock<HeaderValue> = OnceLock::new();
        static PRIVATE_METADATA: OnceLock<HeaderValue> = OnceLock::new();
        static COLLECTION: OnceLock<HeaderValue> = OnceLock::new();
        static AGGREGATE: OnceLock<HeaderValue> = OnceLock::new();
        static PAGE: OnceLock<HeaderValue> = OnceLock::new();
        static EVENT_STREAM: OnceLock<HeaderValue> = OnceLock::new();
        static OPERATIONAL: OnceLock<HeaderValue> = OnceLock::new();
        static CREDENTIALS: OnceLock<HeaderValue> = OnceLock::new();
        let value = match self {
            ContentKind::ImmutableMedia => &IMMUTABLE_MEDIA,
            ContentKind::PrivateMedia => &PRIVATE_MEDIA,
            ContentKind::StaticAsset => &STATIC_ASSET,
            ContentKind::Settings => &SETTINGS,
            ContentKind::EntityMetadata => &ENTITY_METADATA,
            ContentKind::PrivateMetadata => &PRIVATE_METADATA,
            ContentKind::Collection => &COLLECTION,
            ContentKind::Aggregate => &AGGREGATE,
            ContentKind::Page => &PAGE,
            ContentKind::EventStream => &EVENT_STREAM,
            ContentKind::Operational => &OPERATIONAL,
            ContentKind::Credentials => &CREDENTIALS,
        };
        value
            .get_or_init(|| self.policy().cache_control.to_header_value())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache_control::{shared_storability, Storability};
    use http::{header, HeaderMap, Method, StatusCode};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_decision_matrix_of_design_md() {
        let expected = [
            (
                ContentKind::ImmutableMedia,
                "public, max-age=31536000, immutable, stale-if-error=86400",
            ),
            (
                ContentKind::StaticAsset,
                "public, max-age=31536000, immutable",
            ),
            (
                ContentKind::PrivateMedia,
                "private, max-age=31536000, immutable",
            ),
            (ContentKind::Settings, "private, max-age=300"),
            (ContentKind::EntityMetadata, "no-cache"),
            (ContentKind::PrivateMetadata, "private, no-cache"),
            (ContentKind::Collection, "no-cache"),
            (ContentKind::Aggregate, "no-cache"),
            (ContentKind::Page, "max-age=0, stale-if-error=86400"),
            (ContentKind::EventStream, "no-cache, no-transform"),
            (ContentKind::Operational, "no-store"),
            (ContentKind::Credentials, "private, no-store"),
        ];
        for (kind, value) in expected {
            assert_eq!(kind.cache_control(), value, "{kind:?}");
        }
        assert_eq!(expected.len(), ContentKind::ALL.len());
    }

    #[test]
    fn only_media_sends_last_modified_and_offers_ranges() {
        for kind in ContentKind::ALL {
            let policy = kind.policy();
            let media = matches!(
                kind,
                ContentKind::ImmutableMedia | ContentKind::PrivateMedia
            );
            assert_eq!(
                (policy.last_modified, policy.ranges),
                (media, media),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn shared_caches_store_only_what_the_matrix_makes_public() {
        // DESIGN.md: nothing private or no-store is ever stored by a shared cache.
        use Storability::{NoStore, Private, Storable};
        let expected = [
            (ContentKind::ImmutableMedia, Storable),
            (ContentKind::PrivateMedia, Private),
            (ContentKind::StaticAsset, Storable),
            (ContentKind::Settings, Private),
            (ContentKind::EntityMetadata, Storable),
            (ContentKind::PrivateMetadata, Private),
            (ContentKind::Collection, Storable),
            (ContentKind::Aggregate, Storable),
            (ContentKind::Page, Storable),
            (ContentKind::EventStream, Storable),
            (ContentKind::Operational, NoStore),
            (ContentKind::Credentials, NoStore),
        ];
        assert_eq!(expected.len(), ContentKind::ALL.len());
        for (kind, storability) in expected {
            let mut headers = HeaderMap::new();
            headers.insert(header::CACHE_CONTROL, kind.cache_control());
            let verdict =
                shared_storability(&Method::GET, &HeaderMap::new(), StatusCode::OK, &headers);
            assert_eq!(verdict, storability, "{kind:?}");
        }
    }

    #[test]
    fn what_a_signed_in_person_sees_is_never_stored_by_a_shared_cache() {
        // Assets are the same bytes for everyone; the event stream is never stored by the edge
        // (it passes it through).
        let same_for_everyone = [ContentKind::StaticAsset, ContentKind::EventStream];
        for kind in ContentKind::ALL {
            if same_for_everyone.contains(&kind) {
                assert_eq!(kind.signed_in(), kind);
                continue;
            }
            let mut headers = HeaderMap::new();
            headers.insert(header::CACHE_CONTROL, kind.signed_in().cache_control());
            let verdict =
                shared_storability(&Method::GET, &HeaderMap::new(), StatusCode::OK, &headers);
            assert_ne!(verdict, Storability::Storable, "{kind:?}");
        }
        assert_eq!(
            ContentKind::ImmutableMedia.signed_in(),
            ContentKind::PrivateMedia
        );
    }
}
