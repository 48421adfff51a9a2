//! The kubeconfig that points kubectl and kube-rs at an emulator.

/// A kubeconfig with one cluster/context/user named `kube-emulator`, namespace `default`;
/// `ca` (PEM) is the certificate authority of an https `url`.
pub fn render(url: &str, token: Option<&str>, ca: Option<&str>) -> String {
    use base64::Engine;
    let ca = ca.map_or(String::new(), |pem| {
        let data = base64::engine::general_purpose::STANDARD.encode(pem);
        format!("    certificate-authority-data: {data}\n")
    });
    let user = match token {
        Some(t) => format!("    token: {}\n", serde_json::Value::String(t.to_string())),
        None => "    {}\n".to_string(),
    };
    let user = format!("  user:\n{user}");
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-emulator\n  cluster:\n    server: {url}\n{ca}contexts:\n- name: kube-emulator\n  context:\n    cluster: kube-emulator\n    namespace: default\n    user: kube-emulator\ncurrent-context: kube-emulator\npreferences: {{}}\nusers:\n- name: kube-emulator\n{user}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_yaml() {
        for token in [None, Some("s3cr\"et")] {
            let text = render("http://127.0.0.1:1234", token, Some("pem"));
            let v: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
            assert_eq!(
                v["clusters"][0]["cluster"]["server"],
                "http://127.0.0.1:1234"
            );
            assert_eq!(v["contexts"][0]["context"]["namespace"], "default");
            assert_eq!(
                v["clusters"][0]["cluster"]["certificate-authority-data"],
                "cGVt"
            );
            assert_eq!(v["users"][0]["user"]["token"].as_str(), token);
        }
    }
}
