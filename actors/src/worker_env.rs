//! A worker's environment in two layers: the server's own variables, one copy shared by every
//! handler, under what the handler's environment has over them. An idle server with a hundred
//! handlers then holds one copy of its environment, not a hundred (about 5 KB each).

use std::collections::BTreeMap;
use std::sync::Arc;

/// The variables a worker process starts with.
#[derive(Debug, Clone, Default)]
pub struct WorkerEnv {
    /// The server's environment, shared.
    inherited: Arc<BTreeMap<String, String>>,
    /// Where the worker's environment differs from `inherited`: a value, or `None` for a variable
    /// of the server's that the worker does not get.
    own: BTreeMap<String, Option<String>>,
}

impl WorkerEnv {
    /// `full` (a complete environment) as the layer over `inherited` that gives it.
    pub fn over(inherited: &Arc<BTreeMap<String, String>>, full: BTreeMap<String, String>) -> WorkerEnv {
        let mut own: BTreeMap<String, Option<String>> =
            inherited.keys().filter(|k| !full.contains_key(*k)).map(|k| (k.clone(), None)).collect();
        own.extend(full.into_iter().filter(|(k, v)| inherited.get(k) != Some(v)).map(|(k, v)| (k, Some(v))));
        WorkerEnv { inherited: inherited.clone(), own }
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        match self.own.get(key) {
            Some(own) => own.as_ref(),
            None => self.inherited.get(key),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: String, value: String) {
        self.own.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: &str) {
        if self.inherited.contains_key(key) {
            self.own.insert(key.to_string(), None);
        } else {
            self.own.remove(key);
        }
    }

    /// Every variable, once, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        let own = self.own.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
        let inherited = self.inherited.iter().filter(|(k, _)| !self.own.contains_key(*k));
        own.chain(inherited)
    }

    /// As one map (what the fork servers send to a forked process).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Extend<(String, String)> for WorkerEnv {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl From<BTreeMap<String, String>> for WorkerEnv {
    fn from(full: BTreeMap<String, String>) -> WorkerEnv {
        WorkerEnv::over(&Arc::default(), full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_layers_give_back_the_full_environment_and_keep_only_what_differs() {
        let inherited = Arc::new(map(&[("HOME", "/root"), ("PATH", "/bin"), ("TZ", "Europe/Berlin")]));
        let cases = [
            (map(&[("HOME", "/root"), ("PATH", "/bin"), ("TZ", "Europe/Berlin")]), 0),
            (map(&[("HOME", "/root"), ("PATH", "/bin"), ("TZ", ":UTC"), ("_HANDLER", "app.handler")]), 2),
            (map(&[("HOME", "/root"), ("PATH", "/bin")]), 1), // TZ removed
            (map(&[]), 3),
        ];
        for (full, own) in cases {
            let env = WorkerEnv::over(&inherited, full.clone());
            assert_eq!(env.to_map(), full);
            assert_eq!(env.own.len(), own, "{full:?}");
            assert_eq!(env.iter().count(), full.len());
            for (k, v) in &full {
                assert_eq!(env.get(k), Some(v));
            }
        }
    }

    #[test]
    fn insert_and_remove_act_on_the_worker_alone() {
        let inherited = Arc::new(map(&[("HOME", "/root"), ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]));
        let mut env = WorkerEnv::over(&inherited, map(&[("HOME", "/root"), ("AWS_LAMBDA_RUNTIME_API", "x")]));
        env.insert("SMYTH_WORKER".into(), "orders:0".into());
        env.insert("HOME".into(), "/home/lambda".into());
        env.remove("AWS_LAMBDA_RUNTIME_API");
        env.remove("NEVER_SET");
        assert_eq!(env.to_map(), map(&[("HOME", "/home/lambda"), ("SMYTH_WORKER", "orders:0")]));
        assert!(!env.contains_key("AWS_LAMBDA_RUNTIME_API"));
        assert_eq!(inherited.len(), 2, "the server's layer is never written");
        env.remove("SMYTH_WORKER");
        assert_eq!(env.get("SMYTH_WORKER"), None);
    }
}
