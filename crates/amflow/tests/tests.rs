//! The amflow library's integration tests, one binary with a module per topic.

mod suite;
