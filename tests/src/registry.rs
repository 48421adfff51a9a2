//! Debian's docker-registry started per test, and image fixtures pushed to it.
