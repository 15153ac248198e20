//! Where the harness puts PostgreSQL clusters: a build area the `postgres` user cannot enter (as
//! root under a private home such as `/root/.cache`) still gets a working cluster, elsewhere.

use std::os::unix::fs::PermissionsExt;

use hc_tests::postgres::{Cluster, cluster_parent, is_root};
use hc_tests::scratch::ScratchDir;

#[tokio::test]
async fn a_build_area_inside_a_private_directory_still_gets_a_cluster() {
    // Like /root (mode 0700) holding .cache/<target>/bench-ping.
    let home = ScratchDir::new("hc-private-home").unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let area = home.path().join(".cache/target/bench-ping");

    let parent = cluster_parent(&area).unwrap();
    // Root runs the server as postgres, which cannot enter `home`; anyone else runs it as
    // themselves and may keep the preferred directory.
    assert_eq!(parent.starts_with(home.path()), !is_root(), "{parent:?}");

    let cluster = Cluster::start_in(&area).await.unwrap();
    let base = cluster.base_dir().to_owned();
    assert!(base.starts_with(&parent), "{base:?} is under {parent:?}");
    let one: i32 = cluster
        .connect("postgres")
        .await
        .unwrap()
        .query_one("SELECT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    drop(cluster);
    assert!(!base.exists(), "{base:?} is removed with the cluster");
}
