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

/// The entities whose representations the origin keeps in memory: the first component of
/// every key, and what invalidation patterns are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    /// One camera (`camera:get:<id>`, `camera:get_latest_image:<id>`).
    Camera,
    /// The list of cameras (`cameras:list`).
    Cameras,
    /// The dashboard numbers (`dashboard:get_stats`).
    Dashboard,
    /// The settings (`settings:get_all`).
    Settings,
    /// One timelapse (`timelapse:get:<id>`).
    Timelapse,
}

impl Entity {
    /// The key component.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Camera => "camera",
            Entity::Cameras => "cameras",
            Entity::Dashboard => "dashboard",
            Entity::Settings => "settings",
            Entity::Timelapse => "timelapse",
        }
    }

    /// Every key of this entity: `entity:*`.
    pub fn all(self) -> KeyPattern {
        KeyPattern::entity(self.as_str())
    }

    /// Every key of one of its members: `entity:*:id`.
    pub fn member(self, id: impl fmt::Display) -> KeyPattern {
        self.all().id(id)
    }
}

/// `camera:get:<id>`: one camera's representation.
pub fn camera(id: i64) -> CacheKey {
    CacheKey::new(Entity::Camera.as_str(), "get", id)
}

/// `camera:get_latest_image:<id>`: a camera's latest image.
pub fn latest_image(camera_id: i64) -> CacheKey {
    CacheKey::new(Entity::Camera.as_str(), "get_latest_image", camera_id)
}

/// `cameras:list`: every camera.
pub fn camera_list() -> CacheKey {
    CacheKey::singleton(Entity::Cameras.as_str(), "list")
}

/// `cameras:list_public`: the public cameras (what everyone sees).
pub fn public_camera_list() -> CacheKey {
    CacheKey::singleton(Entity::Cameras.as_str(), "list_public")
}

/// `dashboard:get_public_stats`: the numbers of the public cameras only.
pub fn public_dashboard_stats() -> CacheKey {
    CacheKey::singleton(Entity::Dashboard.as_str(), "get_public_stats")
}

/// `dashboard:get_stats`: the dashboard numbers.
pub fn dashboard_stats() -> CacheKey {
    CacheKey::singleton(Entity::Dashboard.as_str(), "get_stats")
}

/// `settings:get_all`: the settings.
pub fn settings() -> CacheKey {
    CacheKey::singleton(Entity::Settings.as_str(), "get_all")
}

/// `timelapse:get:<id>`: one timelapse.
pub fn timelapse(id: i64) -> CacheKey {
    CacheKey::new(Entity::Timelapse.as_str(), "get", id)
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

    #[test]
    fn named_keys_fall_under_their_entity_patterns() {
        assert_eq!(camera(7).as_str(), "camera:get:7");
        assert_eq!(latest_image(7).as_str(), "camera:get_latest_image:7");
        assert_eq!(camera_list().as_str(), "cameras:list");
        assert_eq!(dashboard_stats().as_str(), "dashboard:get_stats");
        assert_eq!(settings().as_str(), "settings:get_all");
        assert_eq!(timelapse(3).as_str(), "timelapse:get:3");
        let member = Entity::Camera.member(7);
        assert!(camera(7).matches(&member) && latest_image(7).matches(&member));
        assert!(!camera(70).matches(&member));
        assert!(!camera_list().matches(&Entity::Camera.all()));
        assert!(timelapse(3).matches(&Entity::Timelapse.all()));
        assert!(settings().matches(&Entity::Settings.all()));
    }
}
