//! Fake forge REST API (GitHub, GitLab, Gitea) recording every request.
