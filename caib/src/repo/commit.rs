//! Who commits and what the commit says. The trailers make catalog history machine-readable:
//! `git log --grep 'Catalog-Action: promote'` finds every promotion, and `Source-ImageBuild`
//! ties a published entry back to the build that produced it.

use crate::error::{CaibError, Result};

/// The catalog change a commit records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Publish,
    Remove,
    Promote,
    Tag,
    Untag,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Publish => "publish",
            Action::Remove => "remove",
            Action::Promote => "promote",
            Action::Tag => "tag",
            Action::Untag => "untag",
        }
    }
}

/// Branch a change is pushed to for review: `caib/<action>/<env>/<name>`. One branch per
/// (action, environment, entry) so that re-running a command updates its pull request.
pub fn branch_name(action: Action, env: &str, name: &str) -> String {
    format!("caib/{}/{env}/{name}", action.as_str())
}

/// Everything a commit message is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    /// Free text after the subject (may be empty).
    pub body: String,
    /// `(key, value)` trailers in order.
    pub trailers: Vec<(String, String)>,
}

impl Message {
    /// The standard message: subject, body and the `Catalog-*` trailers.
    pub fn new(
        action: Action,
        env: &str,
        name: &str,
        subject: String,
        body: String,
        source_imagebuild: Option<&str>,
    ) -> Message {
        let mut trailers = vec![
            ("Catalog-Action".to_owned(), action.as_str().to_owned()),
            ("Catalog-Entry".to_owned(), format!("{env}/{name}")),
        ];
        if let Some(build) = source_imagebuild {
            trailers.push(("Source-ImageBuild".to_owned(), build.to_owned()));
        }
        Message {
            subject,
            body,
            trailers,
        }
    }

    pub fn render(&self) -> String {
        let mut out = self.subject.trim().to_owned();
        out.push_str("\n\n");
        if !self.body.trim().is_empty() {
            out.push_str(self.body.trim());
            out.push_str("\n\n");
        }
        for (key, value) in &self.trailers {
            out.push_str(&format!("{key}: {value}\n"));
        }
        out
    }
}

/// Author identity: git config `user.name`/`user.email` (repository, global, system), else
/// `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL`. Asked before anything is written so a missing
/// identity never leaves a half-done change behind.
pub fn author(repo: &git2::Repository) -> Result<git2::Signature<'static>> {
    let config = repo.config().ok();
    let from_config = |key: &str| {
        config
            .as_ref()
            .and_then(|c| c.get_string(key).ok())
            .filter(|v| !v.trim().is_empty())
    };
    let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let name = from_config("user.name").or_else(|| from_env("GIT_AUTHOR_NAME"));
    let email = from_config("user.email").or_else(|| from_env("GIT_AUTHOR_EMAIL"));
    match (name, email) {
        (Some(name), Some(email)) => git2::Signature::now(&name, &email).map_err(|e| {
            CaibError::Usage(format!(
                "invalid commit author {name:?} <{email}>: {}",
                e.message()
            ))
        }),
        (name, email) => {
            let missing: Vec<&str> = [
                name.is_none().then_some("user.name"),
                email.is_none().then_some("user.email"),
            ]
            .into_iter()
            .flatten()
            .collect();
            Err(CaibError::Usage(format!(
                "no commit author: {} not set. Run `git config --global user.name \"Your Name\"` \
                 and `git config --global user.email you@example.com`, or set GIT_AUTHOR_NAME and \
                 GIT_AUTHOR_EMAIL",
                missing.join(" and ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_follow_the_convention() {
        assert_eq!(
            branch_name(Action::Promote, "staging", "cs9-rpi4"),
            "caib/promote/staging/cs9-rpi4"
        );
    }

    #[test]
    fn messages_end_with_trailers() {
        let m = Message::new(
            Action::Publish,
            "dev",
            "my-build",
            "catalog: publish my-build to dev".into(),
            "Registry URL: quay.io/x/y:1".into(),
            Some("builds/my-build"),
        );
        assert_eq!(
            m.render(),
            "catalog: publish my-build to dev\n\nRegistry URL: quay.io/x/y:1\n\n\
             Catalog-Action: publish\nCatalog-Entry: dev/my-build\nSource-ImageBuild: builds/my-build\n"
        );
        let m = Message::new(Action::Remove, "dev", "x", "s".into(), String::new(), None);
        assert_eq!(
            m.render(),
            "s\n\nCatalog-Action: remove\nCatalog-Entry: dev/x\n"
        );
    }
}
