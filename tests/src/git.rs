//! Real git remotes: bare repositories, git-daemon, smart HTTP with basic auth.
