use super::*;

fn names(view: &View<'_>, after: Option<&ObjKey>) -> Vec<String> {
    view.entries(after, None)
        .map(|(k, _)| k.1.clone())
        .collect()
}

#[test]
fn view_rewinds_and_compaction_expires() {
    let mut st = Store::new(100);
    let key: StorageKey = (String::new(), "configmaps".into());
    let cm = |name: &str, v: &str| json!({"metadata": {"namespace": "default", "name": name}, "data": {"v": v}});
    st.put(&key, obj_key(Some("default"), "a"), cm("a", "1"));
    let rv1 = st.rv();
    st.put(&key, obj_key(Some("default"), "a"), cm("a", "2"));
    st.put(&key, obj_key(Some("default"), "b"), cm("b", "1"));
    let view = st.view(&key, rv1).expect("in history");
    assert_eq!(names(&view, None), ["a"]);
    assert_eq!(
        view.entries(None, None).next().expect("a").1["data"]["v"],
        "1"
    );
    assert_eq!(
        names(&st.view(&key, st.rv()).expect("now"), None),
        ["a", "b"]
    );
    assert_eq!(st.changes_since(rv1).expect("in history").len(), 2);
    st.compact();
    assert!(st.view(&key, rv1).is_none());
    assert!(st.changes_since(rv1).is_none());
    assert_eq!(st.changes_since(st.rv()).expect("current").len(), 0);
}

#[test]
fn view_merges_live_and_rewound_keys_after_a_bound() {
    let mut st = Store::new(100);
    let key: StorageKey = (String::new(), "configmaps".into());
    let other: StorageKey = (String::new(), "secrets".into());
    let cm = |name: &str, v: &str| json!({"metadata": {"namespace": "default", "name": name}, "data": {"v": v}});
    let k = |name: &str| obj_key(Some("default"), name);
    for name in ["b", "d", "f", "h"] {
        st.put(&key, k(name), cm(name, "old"));
    }
    let rv = st.rv();
    // Unchanged since `rv` apart from another resource: the view is the live map.
    st.put(&other, k("z"), cm("z", "x"));
    let view = st.view(&key, rv).expect("in history");
    assert_eq!(view.rewound.len(), 0);
    assert_eq!(names(&view, Some(&k("b"))), ["d", "f", "h"]);
    // Created (before, between and after existing keys), deleted, modified twice.
    for name in ["a", "e", "i"] {
        st.put(&key, k(name), cm(name, "new"));
    }
    st.remove(&key, &k("d"), cm("d", "old"));
    st.put(&key, k("f"), cm("f", "mid"));
    st.put(&key, k("f"), cm("f", "new"));
    st.remove(&key, &k("f"), cm("f", "new"));
    st.put(&key, k("h"), cm("h", "new"));
    let view = st.view(&key, rv).expect("in history");
    assert_eq!(names(&view, None), ["b", "d", "f", "h"]);
    assert_eq!(names(&view, Some(&k("c"))), ["d", "f", "h"]);
    assert_eq!(names(&view, Some(&k("d"))), ["f", "h"]);
    assert_eq!(names(&view, Some(&k("h"))), Vec::<String>::new());
    assert!(
        view.entries(None, None)
            .all(|(_, o)| o["data"]["v"] == "old")
    );
    let now = st.view(&key, st.rv()).expect("now");
    assert_eq!(names(&now, Some(&k("b"))), ["e", "h", "i"]);
}

#[test]
fn entries_stay_in_the_namespace() {
    let mut st = Store::new(100);
    let key: StorageKey = (String::new(), "configmaps".into());
    let put = |st: &mut Store, ns: &str, name: &str| {
        let obj = json!({"metadata": {"namespace": ns, "name": name}});
        st.put(&key, obj_key(Some(ns), name), obj);
    };
    for ns in ["a", "b", "b-x", "c"] {
        put(&mut st, ns, "1");
        put(&mut st, ns, "2");
    }
    let rv = st.rv();
    put(&mut st, "b", "0");
    put(&mut st, "b-x", "3");
    let view = st.view(&key, rv).expect("in history");
    let keys = |after: Option<(&str, &str)>, ns: Option<&str>| -> Vec<String> {
        let after = after.map(|(n, m)| obj_key(Some(n), m));
        let entries = view.entries(after.as_ref(), ns);
        entries.map(|(k, _)| format!("{}/{}", k.0, k.1)).collect()
    };
    assert_eq!(keys(None, Some("b")), ["b/1", "b/2"]);
    assert_eq!(keys(Some(("a", "9")), Some("b")), ["b/1", "b/2"]);
    assert_eq!(keys(Some(("b", "1")), Some("b")), ["b/2"]);
    assert_eq!(keys(Some(("b", "2")), Some("b")), Vec::<String>::new());
    assert_eq!(keys(Some(("c", "1")), Some("b")), Vec::<String>::new());
    assert_eq!(
        keys(Some(("b", "2")), None),
        ["b-x/1", "b-x/2", "c/1", "c/2"]
    );
    assert_eq!(keys(None, Some("nope")), Vec::<String>::new());
}
