//! One module per command. Cluster-reading commands use `cluster`; catalog-changing commands
//! go through `repo` and `forge` and never write to the cluster.

pub mod validate;
