//! Timelapser's edge Worker. Filled in by the edge issue; for now a library that builds for
//! wasm32 and native against core.
