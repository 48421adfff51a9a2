//! The parser against distribution/reference's grammar: accepted and refused references, the
//! messages, the written form, digests, registry keys, and generated references.

use super::*;
use proptest::prelude::*;
use std::net::Ipv6Addr;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn sha() -> String {
    format!("sha256:{HEX}")
}

/// (input, registry, repository, tag, digest)
type Accepted<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

#[test]
fn accepts_valid_references() {
    let d = sha();
    let with_digest = format!("registry.example.com/a/b@{d}");
    let tag_and_digest = format!("quay.io/a/b:v1@{d}");
    let short_digest = format!("ubuntu@{d}");
    #[rustfmt::skip]
    let cases: Vec<Accepted> = vec![
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", Some("22.04"), None),
        ("library/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", Some("22.04"), None),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("index.docker.io/foo/bar", "docker.io", "foo/bar", None, None),
        ("quay.io/centos-automotive/autosd:cs9-rpi4", "quay.io", "centos-automotive/autosd", Some("cs9-rpi4"), None),
        ("quay.io/centos-automotive/autosd:cs9-rpi4-v1.0.0", "quay.io", "centos-automotive/autosd", Some("cs9-rpi4-v1.0.0"), None),
        ("localhost/foo", "localhost", "foo", None, None),
        ("localhost:5000/foo/bar:1.0", "localhost:5000", "foo/bar", Some("1.0"), None),
        ("kind-registry:5000/x:y", "kind-registry:5000", "x", Some("y"), None),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", None, None),
        ("10.0.0.1/a", "10.0.0.1", "a", None, None),
        ("[::1]:5000/a", "[::1]:5000", "a", None, None),
        ("[2001:db8::1]/a:tag", "[2001:db8::1]", "a", Some("tag"), None),
        (&with_digest, "registry.example.com", "a/b", None, Some(&d)),
        (&tag_and_digest, "quay.io", "a/b", Some("v1"), Some(&d)),
        (&short_digest, "docker.io", "library/ubuntu", None, Some(&d)),
        ("a/b__c/d-e/f.g", "docker.io", "a/b__c/d-e/f.g", None, None),
        ("a--b", "docker.io", "library/a--b", None, None),
        ("a---b_c.d", "docker.io", "library/a---b_c.d", None, None),
        ("Foo.example.com/repo", "Foo.example.com", "repo", None, None),
        // normalize.go: an uppercase first component can only be a registry.
        ("UPPER/repo", "UPPER", "repo", None, None),
        // No '/': a Docker Hub short name, so ":5000" is a tag (as in distribution/reference).
        ("localhost:5000", "docker.io", "library/localhost", Some("5000"), None),
        ("quay.io/a:_T.a-g", "quay.io", "a", Some("_T.a-g"), None),
        ("registry-1.docker.io/a", "registry-1.docker.io", "a", None, None),
    ];
    for (input, registry, repository, tag, digest) in cases {
        let r = ImageReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest(), digest, "{input}");
        assert_eq!(r.is_docker_hub(), registry == "docker.io", "{input}");
        assert_eq!(
            ImageReference::parse(&r.to_string()),
            Ok(r.clone()),
            "{input}"
        );
        assert_eq!(input.parse::<ImageReference>(), Ok(r));
    }
}

#[test]
fn rejects_invalid_references() {
    use std::mem::discriminant;
    let long_tag = format!("quay.io/a:{}", "t".repeat(129));
    let max_tag = format!("quay.io/a:{}", "t".repeat(128));
    assert!(ImageReference::parse(&max_tag).is_ok());
    let long_name = format!("quay.io/{}", "a".repeat(248));
    let max_name = format!("quay.io/{}", "a".repeat(247));
    assert!(ImageReference::parse(&max_name).is_ok());
    let md5 = "quay.io/a@md5:d41d8cd98f00b204e9800998ecf8427e";
    let upper_hex = format!("quay.io/a@sha256:{}", HEX.to_uppercase());
    let no_name = format!("@{}", sha());
    let two_digests = format!("quay.io/a@{}@x", sha());
    let s = String::new;
    let domain = || E::InvalidDomain {
        domain: s(),
        reason: s(),
    };
    let port = || E::InvalidPort {
        domain: s(),
        reason: s(),
    };
    let repo = || E::InvalidRepository {
        repository: s(),
        reason: s(),
    };
    let tag = || E::InvalidTag {
        tag: s(),
        reason: s(),
    };
    let digest = || E::InvalidDigest { digest: s() };
    let chr = || E::InvalidCharacter {
        reference: s(),
        character: ' ',
    };
    let cases: Vec<(&str, ReferenceError)> = vec![
        ("", E::Empty),
        ("quay.io/Upper/repo", E::NotLowercase { repository: s() }),
        ("Upper", E::NotLowercase { repository: s() }),
        ("quay.io/a:b:c", tag()),
        ("quay.io/a@sha256:short", digest()),
        (
            md5,
            E::UnsupportedDigestAlgorithm {
                digest: s(),
                algorithm: s(),
            },
        ),
        (&upper_hex, digest()),
        (&two_digests, digest()),
        ("quay.io/-a", repo()),
        ("quay.io/a-", repo()),
        ("quay.io/a..b", repo()),
        ("quay.io/a___b", repo()),
        ("quay.io/a._b", repo()),
        ("quay.io/a/", repo()),
        ("quay.io//a", repo()),
        ("/a", repo()),
        ("quay.io/a/b:t/c", repo()),
        ("quay.io/a$b", repo()),
        ("quay.io:99999/a", port()),
        ("quay.io:0/a", port()),
        ("quay.io:port/a", port()),
        ("quay.io:/a", port()),
        ("[::1]:/a", port()),
        ("[::1/a", domain()),
        ("[::g]/a", domain()),
        ("[1.2.3.4]/a", domain()),
        ("[::1]x/a", domain()),
        ("-bad.io/a", domain()),
        ("quay..io/a", domain()),
        ("qu_ay.io/a", domain()),
        ("quay.io/a:-tag", tag()),
        ("quay.io/a:", tag()),
        ("quay.io/a:t+g", tag()),
        (&long_tag, tag()),
        (
            &long_name,
            E::NameTooLong {
                name: s(),
                length: 0,
            },
        ),
        ("quay.io/a b", chr()),
        (" ubuntu", chr()),
        ("ubuntu\n", chr()),
        ("ubüntu", chr()),
        ("a@", digest()),
        (":tag", E::MissingName { reference: s() }),
        (&no_name, E::MissingName { reference: s() }),
        (HEX, E::AmbiguousIdentifier { reference: s() }),
    ];
    for (input, expected) in cases {
        let err = ImageReference::parse(input).expect_err(input);
        assert_eq!(
            discriminant(&err),
            discriminant(&expected),
            "{input}: {err}"
        );
    }
}

#[test]
fn error_messages_name_the_offending_part() {
    let msg = |s: &str| ImageReference::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("quay.io/Centos-Automotive/autosd"),
        "repository name must be lowercase: \"Centos-Automotive/autosd\""
    );
    assert_eq!(
        msg("quay.io/a@sha256:abc"),
        "invalid digest \"sha256:abc\": expected sha256: followed by 64 lowercase hex \
         characters, or sha512: followed by 128"
    );
    assert_eq!(msg(""), "reference is empty");
    assert!(msg("quay.io/a:-bad").starts_with("tag \"-bad\" is invalid: "));
    assert!(msg("host:99999/a").starts_with("invalid port in \"host:99999\": "));
    assert!(msg(&format!("q.io/{}", "a".repeat(300))).starts_with("reference exceeds 255"));
    assert!(msg("quay.io/a@md5:00").contains("registers are accepted (sha256, sha512)"));
    assert!(msg("quay.io/a..b").contains("\"..\""));
}

#[test]
fn display_keeps_the_written_form() {
    let d = sha();
    let cases = [
        ("ubuntu:22.04", "ubuntu:22.04".to_owned()),
        ("library/ubuntu", "ubuntu".to_owned()),
        ("foo/bar", "foo/bar".to_owned()),
        ("quay.io/a/b:t", "quay.io/a/b:t".to_owned()),
        ("docker.io/ubuntu", "docker.io/library/ubuntu".to_owned()),
        ("index.docker.io/foo/bar", "docker.io/foo/bar".to_owned()),
        (&*format!("library/{HEX}"), format!("library/{HEX}")),
        (&*format!("a:t@{d}"), format!("a:t@{d}")),
    ];
    for (input, shown) in cases {
        let r = ImageReference::parse(input).unwrap();
        assert_eq!(r.to_string(), shown);
        assert_eq!(ImageReference::parse(&shown), Ok(r));
    }
    let r = ImageReference::parse("ubuntu:22.04").unwrap();
    assert_eq!(r.canonical(), "docker.io/library/ubuntu:22.04");
}

#[test]
fn digest_helpers() {
    let d = sha();
    assert!(is_valid_digest(&d));
    assert!(!is_valid_digest("sha256:abc"));
    assert!(is_valid_digest(&format!("sha512:{HEX}{HEX}")));
    assert!(!is_valid_digest(&format!("sha512:{HEX}")));
    assert!(!is_valid_digest(&d.to_uppercase()));
    let r = ImageReference::parse("quay.io/a/b:v1").unwrap();
    let pinned = r.with_digest(&d).unwrap();
    assert_eq!(pinned.tag(), Some("v1"));
    assert_eq!(pinned.digest(), Some(d.as_str()));
    assert_eq!(pinned.to_string(), format!("quay.io/a/b:v1@{d}"));
    assert_eq!(pinned.without_digest(), r);
    assert!(matches!(
        r.with_digest("sha256:x"),
        Err(E::InvalidDigest { .. })
    ));
    let familiar = ImageReference::parse("ubuntu")
        .unwrap()
        .with_digest(&d)
        .unwrap();
    assert_eq!(familiar.to_string(), format!("ubuntu@{d}"));
}

#[test]
fn registry_keys() {
    let hub = ImageReference::parse("ubuntu").unwrap();
    for key in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
        "https://registry-1.docker.io",
    ] {
        assert!(hub.matches_registry_key(key), "{key}");
    }
    for key in [
        "quay.io",
        "docker.io.evil.com",
        "evil-docker.io",
        "",
        "https://",
    ] {
        assert!(!hub.matches_registry_key(key), "{key}");
    }
    let quay = ImageReference::parse("quay.io/a/b").unwrap();
    for key in [
        "quay.io",
        "https://quay.io/v1/",
        "http://quay.io",
        "QUAY.IO",
        "quay.io/",
    ] {
        assert!(quay.matches_registry_key(key), "{key}");
    }
    for key in [
        "quay.io.evil.com",
        "evilquay.io",
        "quay.io:443",
        "docker.io",
        "quay",
    ] {
        assert!(!quay.matches_registry_key(key), "{key}");
    }
    let local = ImageReference::parse("localhost:5000/a").unwrap();
    assert!(local.matches_registry_key("localhost:5000"));
    assert!(local.matches_registry_key("http://localhost:5000/v2/"));
    assert!(!local.matches_registry_key("localhost"));
    assert!(!local.matches_registry_key("localhost:50000"));
    let v6 = ImageReference::parse("[::1]:5000/a").unwrap();
    assert!(v6.matches_registry_key("https://[::1]:5000"));
    assert!(!v6.matches_registry_key("[::1]"));
}

fn host() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?";
    let port = prop_oneof![
        Just(String::new()),
        (1u32..=65535).prop_map(|p| format!(":{p}"))
    ];
    let ipv6 = any::<[u16; 8]>().prop_flat_map(|segs| {
        let full = segs.map(|s| format!("{s:x}")).join(":");
        let short = Ipv6Addr::from(segs).to_string();
        prop_oneof![Just(full), Just(short)].prop_filter("no dots", |a| !a.contains('.'))
    });
    let name = prop_oneof![
        Just("localhost".to_owned()),
        Just("docker.io".to_owned()),
        Just("index.docker.io".to_owned()),
        prop::collection::vec(label, 2..4).prop_map(|l| l.join(".")),
        any::<[u8; 4]>().prop_map(|o| o.map(|b| b.to_string()).join(".")),
        ipv6.prop_map(|a| format!("[{a}]")),
    ];
    let dotless =
        ("[a-z][a-z0-9-]{0,10}[a-z0-9]", 1u32..=65535).prop_map(|(h, p)| format!("{h}:{p}"));
    prop_oneof![(name, port).prop_map(|(n, p)| n + &p), dotless]
}

fn path() -> impl Strategy<Value = Vec<String>> {
    let component = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,3}";
    prop::collection::vec(component, 1..5)
}

proptest! {
    #[test]
    fn generated_references_round_trip(
        host in prop::option::of(host()),
        mut path in path(),
        tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
        digest in prop::option::of(prop_oneof![
            "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
            "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
        ]),
    ) {
        if host.is_none() && path.len() > 1 {
            // A first component with a '.' would be read as a registry (normalize.go).
            path[0] = path[0].replace('.', "-");
        }
        let mut input = match &host { Some(h) => format!("{h}/"), None => String::new() };
        input.push_str(&path.join("/"));
        if let Some(t) = &tag { input.push(':'); input.push_str(t); }
        if let Some(d) = &digest { input.push('@'); input.push_str(d); }

        let r = ImageReference::parse(&input).map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
        let registry = match host.as_deref() {
            None | Some("index.docker.io") => "docker.io",
            Some(h) => h,
        };
        let mut repository = path.join("/");
        if registry == "docker.io" && path.len() == 1 {
            repository = format!("library/{repository}");
        }
        prop_assert_eq!(r.registry(), registry);
        prop_assert_eq!(r.repository(), repository.as_str());
        prop_assert_eq!(r.tag(), tag.as_deref());
        prop_assert_eq!(r.digest(), digest.as_deref());
        prop_assert_eq!(ImageReference::parse(&r.to_string()), Ok(r.clone()));
        let canonical = ImageReference::parse(&r.canonical()).unwrap();
        prop_assert_eq!(canonical.registry(), r.registry());
        prop_assert_eq!(canonical.repository(), r.repository());
        prop_assert_eq!(canonical.tag(), r.tag());
        prop_assert_eq!(canonical.digest(), r.digest());
        prop_assert_eq!(canonical.canonical(), r.canonical());
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>(), t in "[a-zA-Z0-9:/@.\\[\\]_-]{0,80}") {
        for input in [&s, &t] {
            if let Ok(r) = ImageReference::parse(input) {
                prop_assert_eq!(ImageReference::parse(&r.to_string()), Ok(r.clone()));
                prop_assert!(ImageReference::parse(&r.canonical()).is_ok());
                let _ = r.matches_registry_key(input);
            }
        }
    }
}

/// sha512 pins parse everywhere a sha256 pin does, and a reference of the longest name, tag and
/// digest fits the CRD's limit on spec.registryUrl.
#[test]
fn sha512_references() {
    let d = format!("sha512:{HEX}{HEX}");
    for input in [
        format!("quay.io/a/b@{d}"),
        format!("quay.io/a/b:v1@{d}"),
        format!("ubuntu@{d}"),
        format!("localhost:5000/a@{d}"),
    ] {
        let r = ImageReference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.digest(), Some(d.as_str()), "{input}");
        assert_eq!(r.to_string(), input);
    }
    let r = ImageReference::parse("quay.io/a/b:v1").unwrap();
    assert_eq!(r.with_digest(&d).unwrap().digest(), Some(d.as_str()));
    let longest = format!(
        "q.io/{}:{}@{d}",
        "a".repeat(NAME_MAX - "q.io/".len()),
        "t".repeat(128)
    );
    assert_eq!(longest.len(), REFERENCE_MAX);
    assert!(ImageReference::parse(&longest).is_ok());
    let wrong_length = format!("quay.io/a@sha512:{HEX}");
    assert!(matches!(
        ImageReference::parse(&wrong_length),
        Err(E::InvalidDigest { .. })
    ));
}

/// The 255-character limit applies to the name as written: a short Docker Hub name is not
/// charged for the `docker.io/library/` that normalization adds.
#[test]
fn name_length_is_measured_as_written() {
    let familiar = "a".repeat(NAME_MAX);
    let r = ImageReference::parse(&familiar).unwrap();
    assert_eq!(r.repository(), format!("library/{familiar}"));
    assert!(r.canonical().len() > NAME_MAX);
    let too_long = "a".repeat(NAME_MAX + 1);
    assert_eq!(
        ImageReference::parse(&too_long),
        Err(E::NameTooLong {
            name: too_long.clone(),
            length: NAME_MAX + 1
        })
    );
    // `index.docker.io/x` is charged for what was written, not the shorter `docker.io/x`.
    let legacy = format!(
        "index.docker.io/{}",
        "a".repeat(NAME_MAX - "docker.io/".len())
    );
    assert!(matches!(
        ImageReference::parse(&legacy),
        Err(E::NameTooLong { length, .. }) if length == legacy.len()
    ));
    let tagged = format!("{familiar}:v1@sha256:{HEX}");
    assert!(ImageReference::parse(&tagged).is_ok());
}
