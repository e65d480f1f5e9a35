//! Who may fetch a media file: everyone when a public camera shows it, else only signed-in
//! people (the file is then sent `private`, so no shared cache stores it). Media is
//! content-addressed, so one file can belong to a public and a private camera at once; it is
//! public as long as one public camera shows it.
//!
//! The answer is kept in memory per file and forgotten whenever a camera changes or goes
//! (a camera turning private must stop its files being sent as public at once). A lookup
//! that started before such a change never stores its answer after it (a generation count,
//! as in [`crate::cache`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use timelapser_core::events::Event;

use crate::bus::EventHandler;
use crate::db::{self, Db};
use crate::error::Result;
use crate::media::MediaName;

/// Files remembered at most.
const CAPACITY: u64 = 100_000;

/// The remembered answers.
#[derive(Clone)]
pub struct MediaVisibility {
    public: moka::sync::Cache<MediaName, bool>,
    generation: Arc<AtomicU64>,
}

impl Default for MediaVisibility {
    fn default() -> Self {
        Self {
            public: moka::sync::Cache::new(CAPACITY),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl MediaVisibility {
    /// Whether everyone may fetch `name` (false also when no row refers to it).
    pub async fn is_public(&self, db: &Db, name: &MediaName) -> Result<bool> {
        if let Some(public) = self.public.get(name) {
            return Ok(public);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let mut conn = db.pool().acquire().await?;
        let public = db::media::is_public(&mut conn, name).await?;
        if self.generation.load(Ordering::Acquire) == generation {
            self.public.insert(name.clone(), public);
        }
        Ok(public)
    }

    /// Forgets every answer.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.public.invalidate_all();
    }
}

impl EventHandler for MediaVisibility {
    fn handle(&self, event: &Event) {
        if matches!(
            event,
            Event::CameraUpdated { .. }
                | Event::CameraDeleted { .. }
                | Event::CameraCreated { .. }
                // A public row of shared bytes may have gone, leaving only private ones.
                | Event::ImagesDeleted { .. }
                | Event::VideoDeleted { .. }
                | Event::TimelapseDeleted { .. }
        ) {
            self.forget();
        }
    }
}
