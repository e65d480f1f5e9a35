//! Timelapser's origin server. Filled in by the origin issue; for now it only proves the
//! workspace builds against core.

fn main() {
    println!(
        "timelapser-origin: not yet implemented (media policy: {:?})",
        timelapser_core::ContentKind::ImmutableMedia.cache_control()
    );
}
