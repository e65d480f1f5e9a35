//! End-to-end test support: starting the origin and `wrangler dev` on free ports. Filled in by
//! the edge and pages issues.
