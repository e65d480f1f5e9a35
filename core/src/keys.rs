//! In-memory cache keys: `entity:operation:id`, as the v4 guide names them
//! (`camera:get_latest_image:123`, `dashboard:get_stats`, `setting:timezone`).
//!
//! Components are escaped (`%` and `:` percent-encoded) so a key always splits back into the
//! parts it was made of, and a prefix can never match a longer entity or operation by accident.

use std::fmt;

/// A cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

fn escape(component: &str) -> String {
    component.replace('%', "%25").replace(':', "%3A")
}

impl CacheKey {
    /// `entity:operation:id`, e.g. `camera:get_latest_image:123`.
    pub fn new(entity: &str, operation: &str, id: impl fmt::Display) -> Self {
        Self(format!(
            "{}:{}:{}",
            escape(entity),
            escape(operation),
            escape(&id.to_string())
        ))
    }

    /// `entity:operation` for keys without an id, e.g. `dashboard:get_stats`.
    pub fn singleton(entity: &str, operation: &str) -> Self {
        Self(format!("{}:{}", escape(entity), escape(operation)))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the key falls under `pattern`.
    pub fn matches(&self, pattern: &KeyPattern) -> bool {
        pattern.matches(&self.0)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CacheKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A set of keys to invalidate: an entity, optionally narrowed to one operation and/or one id.
/// `KeyPattern::entity("camera").id(5)` is DESIGN.md's `camera:*:5`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPattern {
    entity: String,
    operation: Option<String>,
    id: Option<String>,
}

impl KeyPattern {
    /// Every key of an entity: `entity:*`.
    pub fn entity(entity: &str) -> Self {
        Self {
            entity: escape(entity),
            operation: None,
            id: None,
        }
    }

    /// Narrowed to one operation: `entity:operation:*`.
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(escape(operation));
        self
    }

    /// Narrowed to one id: `entity:*:id`.
    pub fn id(mut self, id: impl fmt::Display) -> Self {
        self.id = Some(escape(&id.to_string()));
        self
    }

    /// Whether a key, in its string form (as a cache stores it), falls under this pattern.
    pub fn matches(&self, key: &str) -> bool {
        let mut parts = key.split(':');
        let (entity, operation, id) = (parts.next(), parts.next(), parts.next());
        entity == Some(self.entity.as_str())
            && self
                .operation
                .as_deref()
                .is_none_or(|op| operation == Some(op))
            && self.id.as_deref().is_none_or(|want| id == Some(want))
    }

    /// A string prefix every matching key starts with, to narrow a scan; keys that start with
    /// it may still not match (`camera:get` prefixes `camera:get_latest_image:1`), so filter
    /// the scan with [`CacheKey::matches`].
    pub fn prefix(&self) -> String {
        match &self.operation {
            Some(op) => match &self.id {
                Some(id) => format!("{}:{}:{}", self.entity, op, id),
                None => format!("{}:{}", self.entity, op),
            },
            None => format!("{}:", self.entity),
        }
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.entity,
            self.operation.as_deref().unwrap_or("*"),
            self.id.as_deref().unwrap_or("*")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn keys_follow_the_v4_convention() {
        assert_eq!(
            CacheKey::new("camera", "get_latest_image", 123).as_str(),
            "camera:get_latest_image:123"
        );
        assert_eq!(
            CacheKey::singleton("dashboard", "get_stats").as_str(),
            "dashboard:get_stats"
        );
    }

    #[test]
    fn separators_inside_components_are_escaped() {
        let key = CacheKey::new("batch", "get_images", "camera:1");
        assert_eq!(key.as_str(), "batch:get_images:camera%3A1");
        assert!(!key.matches(&KeyPattern::entity("batch").id("camera")));
        assert!(key.matches(&KeyPattern::entity("batch").id("camera:1")));
    }

    #[test]
    fn patterns_match_entity_operation_and_id() {
        let latest5 = CacheKey::new("camera", "get_latest_image", 5);
        let get5 = CacheKey::new("camera", "get", 5);
        let latest50 = CacheKey::new("camera", "get_latest_image", 50);
        let cameras = CacheKey::singleton("cameras", "list");
        let by_id = KeyPattern::entity("camera").id(5);
        assert!(latest5.matches(&by_id) && get5.matches(&by_id));
        assert!(!latest50.matches(&by_id));
        assert!(!cameras.matches(&KeyPattern::entity("camera")));
        assert!(latest50.matches(&KeyPattern::entity("camera").operation("get_latest_image")));
        assert!(!get5.matches(&KeyPattern::entity("camera").operation("get_latest_image")));
        assert_eq!(by_id.to_string(), "camera:*:5");
    }

    #[test]
    fn prefixes_never_overreach() {
        assert_eq!(KeyPattern::entity("camera").prefix(), "camera:");
        assert!(!CacheKey::singleton("cameras", "list")
            .as_str()
            .starts_with(&KeyPattern::entity("camera").prefix()));
        assert_eq!(
            KeyPattern::entity("camera").operation("get").prefix(),
            "camera:get"
        );
        assert_eq!(
            KeyPattern::entity("camera").operation("get").id(1).prefix(),
            "camera:get:1"
        );
    }
}
