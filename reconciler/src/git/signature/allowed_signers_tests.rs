use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

fn utc(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_second()
}

fn one(secret_key: &str, line: &str) -> Result<AllowedSigner, LineError> {
    let (mut signers, mut problems) = parse(secret_key, line);
    assert_eq!(signers.len() + problems.len(), 1, "{line}");
    match signers.pop() {
        Some(s) => Ok(s),
        None => Err(problems.pop().unwrap().error),
    }
}

#[test]
fn principals_options_and_key_of_an_allowed_signers_line() {
    let line = format!(
        "alice@example.com,*@ops.example.com namespaces=\"git,file\",VALID-AFTER=\"20260101\",valid-before=\"20270101Z\" {KEY} alice's laptop"
    );
    let s = one(ALLOWED_SIGNERS, &line).unwrap();
    assert_eq!(
        s.principals.as_deref(),
        Some("alice@example.com,*@ops.example.com")
    );
    assert_eq!(
        s.namespaces.as_deref(),
        Some("git,file"),
        "the quoted comma is not an option separator"
    );
    assert_eq!(s.valid_after, parse_time("20260101"));
    assert_eq!(s.valid_before, Some(utc("2027-01-01T00:00:00Z")));
    assert_eq!(s.key, PublicKey::from_openssh(KEY).unwrap());
    let plain = one(ALLOWED_SIGNERS, &format!("bob@example.com {KEY}")).unwrap();
    assert_eq!(plain.principals.as_deref(), Some("bob@example.com"));
    assert_eq!((plain.namespaces, plain.valid_before), (None, None));
}

#[test]
fn quoted_values_keep_blanks_and_escaped_quotes() {
    let s = one(
        ALLOWED_SIGNERS,
        &format!("* namespaces=\"git, \\\"odd\\\"\" {KEY}"),
    )
    .unwrap();
    assert_eq!(s.namespaces.as_deref(), Some("git, \"odd\""));
}

#[test]
fn lines_numbered_by_secret_key_comments_and_blanks_skipped() {
    let text = format!("# trusted\n\nalice@example.com {KEY}\nnot a key\n");
    let (signers, problems) = parse(ALLOWED_SIGNERS, &text);
    assert_eq!(signers.len(), 1);
    assert_eq!(signers[0].origin.to_string(), "allowed_signers:3");
    assert_eq!(
        problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["allowed_signers:4: no SSH public key found"]
    );
}

#[test]
fn unusable_lines_say_why() {
    let cases = [
        (format!("* cert-authority {KEY}"), LineError::CertAuthority),
        (
            format!("* no-touch-required {KEY}"),
            LineError::UnknownOption("no-touch-required".into()),
        ),
        (
            format!("* namespaces=git {KEY}"),
            LineError::Unquoted("namespaces".into()),
        ),
        (
            format!("* namespaces=\"git {KEY}"),
            LineError::Unterminated("namespaces".into()),
        ),
        (
            format!("* namespaces=\"git\",namespaces=\"file\" {KEY}"),
            LineError::Repeated("namespaces"),
        ),
        (
            format!("* valid-before=\"2026-01-01\" {KEY}"),
            LineError::BadTime {
                option: "valid-before",
                value: "2026-01-01".into(),
            },
        ),
        (
            format!("* valid-after=\"20270101Z\",valid-before=\"20260101Z\" {KEY}"),
            LineError::NeverValid,
        ),
        (KEY.to_string(), LineError::NoPrincipals),
        (
            "alice@example.com ssh-ed25519 AAAAbroken".into(),
            LineError::BadKey(String::new()),
        ),
        ("alice@example.com".into(), LineError::NoKey),
    ];
    for (line, want) in cases {
        let got = one(ALLOWED_SIGNERS, &line).map(|_| ()).unwrap_err();
        match want {
            LineError::BadKey(_) => assert!(matches!(got, LineError::BadKey(_)), "{line}: {got}"),
            want => assert_eq!(got, want, "{line}"),
        }
    }
    assert!(
        LineError::CertAuthority
            .to_string()
            .contains("cert-authority entries are not supported")
    );
}

#[test]
fn authorized_keys_trust_any_committer_until_their_expiry() {
    let s = one(AUTHORIZED_KEYS, &format!("{KEY} bob")).unwrap();
    assert_eq!(s.principals, None, "any committer");
    let s = one(
        AUTHORIZED_KEYS,
        &format!("restrict,from=\"10.0.0.1,10.0.0.2\",expiry-time=\"202701011200Z\" {KEY}"),
    )
    .unwrap();
    assert_eq!(s.valid_before, Some(utc("2027-01-01T12:00:00Z")));
    assert_eq!(
        one(AUTHORIZED_KEYS, &format!("cert-authority {KEY}")).unwrap_err(),
        LineError::CertAuthority
    );
}

#[test]
fn times_are_yyyymmdd_hhmm_ss_local_or_utc() {
    assert_eq!(parse_time("20260102Z"), Some(utc("2026-01-02T00:00:00Z")));
    assert_eq!(
        parse_time("202601021530z"),
        Some(utc("2026-01-02T15:30:00Z"))
    );
    assert_eq!(
        parse_time("20260102153045UTC"),
        Some(utc("2026-01-02T15:30:45Z"))
    );
    let local = jiff::civil::date(2026, 1, 2)
        .at(15, 30, 0, 0)
        .to_zoned(jiff::tz::TimeZone::system())
        .unwrap()
        .timestamp()
        .as_second();
    assert_eq!(
        parse_time("202601021530"),
        Some(local),
        "no suffix: system time zone"
    );
    for bad in [
        "2026010",
        "202601021",
        "20261301",
        "20260230",
        "2026-01-02",
        "Z",
        "",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

#[test]
fn principal_patterns_are_openssh_pattern_lists() {
    let m = matches_pattern_list;
    assert!(m("alice@example.com", "alice@example.com"));
    assert!(!m("alice@example.com", "bob@example.com"));
    assert!(m("alice@example.com", "bob@example.com,*@example.com"));
    assert!(m("al@example.com", "a?@example.com"));
    assert!(!m("alice@example.com", "a?@example.com"));
    assert!(!m(
        "mallory@example.com",
        "*@example.com,!mallory@example.com"
    ));
    assert!(
        !m("mallory@example.com", "!mallory@example.com"),
        "a negation alone matches nothing"
    );
    assert!(!m("alice@example.com.evil.org", "*@example.com"));
    assert!(m("a*b", "a*b"));
    assert!(m("", "*"));
    assert!(!m("x", ""));
    let long = "a".repeat(5000);
    assert!(
        !m(&long, "*a*a*a*a*a*a*a*a*a*a*a*b"),
        "no exponential backtracking"
    );
}
