//! The controller image proven against the API server without a base image: the root
//! deploy/images/build-rootfs.sh assembles (what the Dockerfile copies into `FROM scratch`), run
//! under chroot as the image's non-root user, invoked as `controller` (Bitnami's chart command),
//! with a kubeconfig for deploy/'s ServiceAccount as its only credentials.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::Command;

use e2e_tests::envtest::{IMAGE_USER, data, eventually, wait_secret};

use super::rbac::{ACCOUNT, forbidden_lines, install_deploy_as_account};
use super::{ACT, seal, sealed_secret_yaml, setup};

#[tokio::test]
async fn image_root_under_deploy_service_account_unseals() {
    let test = "image_root::image_root_under_deploy_service_account_unseals";
    let Some(cluster) = setup(test) else {
        return;
    };
    // /proc/self belongs to this process's effective user.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        eprintln!("{test}: skipped: chroot needs root (CAP_SYS_CHROOT)");
        return;
    }
    let root = cluster
        .dir
        .join(format!("image-root-{}", std::process::id()));
    let status = Command::new(cluster.workspace.join("deploy/images/build-rootfs.sh"))
        .arg("--binary")
        .arg(&cluster.controller_bin)
        .args([
            "--name",
            "secrets-controller",
            "--alias",
            "controller",
            "--out",
        ])
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success(), "build-rootfs.sh failed: {status}");

    // The ServiceAccount's kubeconfig where a mounted one would be, readable by the user only.
    let kubeconfig = root.join("home/nonroot/.kube/config");
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    install_deploy_as_account(cluster, &kubeconfig);
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&kubeconfig, Some(IMAGE_USER), Some(IMAGE_USER)).unwrap();

    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "image-root", &[]).await;
    // The Deployment passes no arguments; these confine the run to this test's namespace
    // and Lease, as the other e2e tests do.
    let mut controller = cluster
        .controller(ACCOUNT.0)
        .unscoped()
        .image_root(&root)
        .kubeconfig(&kubeconfig)
        .arg("--all-namespaces=false")
        .arg(&format!("--additional-namespaces={ns}"))
        .arg("--leader-election-id=image-root")
        .start();
    controller.ready().await;

    let status = std::fs::read_to_string(format!("/proc/{}/status", controller.pid())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace()
            .skip(1)
            .all(|id| id == IMAGE_USER.to_string()),
        "the controller does not run as {IMAGE_USER}: {uid}"
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", controller.pid())).unwrap();
    assert!(
        exe.starts_with(&root),
        "the controller runs {} from outside the image root",
        exe.display()
    );

    // A SealedSecret sealed to the certificate the controller serves becomes a Secret.
    let cert = eventually("the controller's key", ACT, || {
        controller.get("/v1/cert.pem")
    })
    .await;
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "from-image",
        &[("v", &seal(&cert, &ns, "from-image", "image-root"))],
        "",
    ));
    wait_secret(
        &client,
        &ns,
        "from-image",
        &data(&[("v", "image-root")]),
        ACT,
    )
    .await;
    controller.terminate().await;

    let log = controller.log_text();
    let forbidden = forbidden_lines(&log);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        forbidden.is_empty() && errors.is_empty(),
        "the image root's controller was refused: {forbidden:?}\nerrors: {errors:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
