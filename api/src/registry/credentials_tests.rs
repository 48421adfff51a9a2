use super::*;

fn r(s: &str) -> ImageReference {
    ImageReference::parse(s).unwrap()
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn dockerconfigjson_picks_the_matching_host_only() {
    let json = format!(
        r#"{{"auths":{{"quay.io":{{"auth":"{}"}},"localhost:5000":{{"username":"u","password":"p"}}}}}}"#,
        b64("q:qp")
    );
    let d = data(&[(".dockerconfigjson", &json)]);
    let t = Some(DOCKER_CONFIG_JSON_TYPE);
    assert_eq!(
        Credentials::from_secret_data(t, &d, None, &r("localhost:5000/a:1")).unwrap(),
        Credentials::Basic {
            username: "u".into(),
            password: "p".into()
        }
    );
    assert_eq!(
        Credentials::from_secret_data(t, &d, None, &r("quay.io/org/a:1")).unwrap(),
        Credentials::Basic {
            username: "q".into(),
            password: "qp".into()
        }
    );
    let err = Credentials::from_secret_data(t, &d, None, &r("quay.io.evil.com/a")).unwrap_err();
    assert!(
        matches!(err, CredentialsError::NoMatchingEntry { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("localhost:5000, quay.io"), "{err}");
}

#[test]
fn docker_hub_aliases_match() {
    let json = format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
        b64("hub:secret")
    );
    let d = data(&[(".dockerconfigjson", &json)]);
    let c = Credentials::from_secret_data(None, &d, None, &r("ubuntu:22.04")).unwrap();
    assert_eq!(
        c,
        Credentials::Basic {
            username: "hub".into(),
            password: "secret".into()
        }
    );
}

#[test]
fn dockercfg_and_plain_keys() {
    let cfg = format!(r#"{{"r.example:443":{{"auth":"{}"}}}}"#, b64("a:b"));
    let c = Credentials::from_secret_data(
        Some(DOCKER_CFG_TYPE),
        &data(&[(".dockercfg", &cfg)]),
        None,
        &r("r.example:443/x"),
    )
    .unwrap();
    assert_eq!(
        c,
        Credentials::Basic {
            username: "a".into(),
            password: "b".into()
        }
    );
    let c = Credentials::from_secret_data(
        Some("Opaque"),
        &data(&[("username", "u"), ("password", "p\n")]),
        Some("quay.io, reg.example"),
        &r("reg.example/y"),
    )
    .unwrap();
    assert_eq!(
        c,
        Credentials::Basic {
            username: "u".into(),
            password: "p".into()
        }
    );
    let c = Credentials::from_secret_data(
        None,
        &data(&[("token", "t0k")]),
        Some("docker.io"),
        &r("x/y"),
    )
    .unwrap();
    assert_eq!(c, Credentials::Bearer("t0k".into()));
}

#[test]
fn errors_name_the_problem_without_values() {
    let e =
        Credentials::from_secret_data(None, &data(&[("user", "x")]), None, &r("x/y")).unwrap_err();
    assert!(e.to_string().contains("found: user"), "{e}");
    let e = Credentials::from_secret_data(
        Some(DOCKER_CONFIG_JSON_TYPE),
        &data(&[(".dockerconfigjson", "{not json")]),
        None,
        &r("x/y"),
    )
    .unwrap_err();
    assert!(matches!(e, CredentialsError::InvalidJson { .. }));
    let e =
        Credentials::from_secret_data(Some(DOCKER_CONFIG_JSON_TYPE), &data(&[]), None, &r("x/y"))
            .unwrap_err();
    assert!(e.to_string().contains(".dockerconfigjson"), "{e}");
    let debug = format!(
        "{:?}",
        Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into()
        }
    );
    assert!(!debug.contains("hunter2"));
}

#[test]
fn plain_keys_are_used_only_for_the_bound_hosts() {
    let basic = data(&[("username", "u"), ("password", "p")]);
    let token = data(&[("token", "t")]);
    for d in [&basic, &token] {
        for bound in [
            None,
            Some(""),
            Some("quay.io"),
            Some("evil.example,quay.io:443"),
        ] {
            let e =
                Credentials::from_secret_data(Some("Opaque"), d, bound, &r("evil.example:5000/x"))
                    .unwrap_err();
            assert!(
                matches!(e, CredentialsError::NotBound { .. }),
                "{bound:?}: {e}"
            );
            assert!(e.to_string().contains("registry evil.example:5000"), "{e}");
        }
        let ok = Credentials::from_secret_data(
            Some("kubernetes.io/basic-auth"),
            d,
            Some(" quay.io , Evil.Example:5000"),
            &r("evil.example:5000/x"),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }
    // Docker Hub's aliases bind Docker Hub references.
    assert!(
        Credentials::from_secret_data(None, &basic, Some("docker.io"), &r("ubuntu:22.04")).is_ok()
    );
    // A secret without usable keys says so, rather than asking for a binding.
    let e =
        Credentials::from_secret_data(None, &data(&[("user", "x")]), None, &r("x/y")).unwrap_err();
    assert!(matches!(e, CredentialsError::MissingKey { .. }), "{e}");
}

#[test]
fn fingerprints_differ_by_secret() {
    let a = Credentials::Basic {
        username: "u".into(),
        password: "1".into(),
    };
    let b = Credentials::Basic {
        username: "u".into(),
        password: "2".into(),
    };
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint(), a.clone().fingerprint());
}
