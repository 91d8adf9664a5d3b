//! Talking to the controller through the Kubernetes API server's service proxy, and fetching
//! certificates from URLs.

use anyhow::{Context as _, Result, anyhow, bail};
use http::{Method, Request, StatusCode};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cli::Args;

/// Runs one async operation on a small runtime; most invocations never need one.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

fn config_options(args: &Args) -> KubeConfigOptions {
    KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    }
}

fn read_kubeconfig(args: &Args) -> Result<Kubeconfig> {
    match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display())),
        None => {
            Kubeconfig::read().context("cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config)")
        }
    }
}

/// The namespace of the kubeconfig's context ("default" when the context names none), as kubectl
/// would use it.
pub fn kubeconfig_namespace(args: &Args) -> Result<String> {
    let kubeconfig = read_kubeconfig(args)?;
    let context_name = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| anyhow!("the kubeconfig has no current context"))?;
    let namespace = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone());
    Ok(namespace.unwrap_or_else(|| "default".to_string()))
}

async fn kube_client(args: &Args) -> Result<kube::Client> {
    let options = config_options(args);
    let config = if args.kubeconfig.is_some() {
        kube::Config::from_custom_kubeconfig(read_kubeconfig(args)?, &options).await?
    } else if options.context.is_some() || options.cluster.is_some() || options.user.is_some() {
        kube::Config::from_kubeconfig(&options).await?
    } else {
        kube::Config::infer()
            .await
            .context("cannot find a kubeconfig or in-cluster configuration")?
    };
    kube::Client::try_from(config).context("cannot create the Kubernetes client")
}

/// The controller's HTTP API, reached through `/api/v1/namespaces/NS/services/.../proxy`.
pub struct Controller {
    client: kube::Client,
    namespace: String,
    name: String,
    /// The service proxy path, looked up once per run.
    prefix: tokio::sync::OnceCell<String>,
}

/// What one `/v1/rotate` request came to.
pub enum RotateOutcome {
    /// The re-encrypted SealedSecret (JSON).
    Done(Vec<u8>),
    /// 429: over the controller's rate limit for this client.
    SlowDown,
    /// 503: the controller is busy with other requests; retry after this long.
    Busy(std::time::Duration),
    /// Any other answer: its status and the controller's message.
    Refused(StatusCode, String),
}

impl Controller {
    pub async fn connect(args: &Args) -> Result<Self> {
        Ok(Self {
            client: kube_client(args).await?,
            namespace: args.controller_namespace.clone(),
            name: args.controller_name.clone(),
            prefix: tokio::sync::OnceCell::new(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(kube::client::Body::from(body))
            .context("cannot build the request")?;
        let response = self
            .client
            .send(request)
            .await
            .with_context(|| format!("request to the Kubernetes API failed ({path})"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .context("cannot read the response")?;
        Ok((status, bytes.to_vec()))
    }

    /// The proxy prefix for the Service's first port, as Bitnami's kubeseal builds it.
    async fn proxy_prefix(&self) -> Result<String> {
        self.prefix
            .get_or_try_init(|| self.lookup_proxy_prefix())
            .await
            .cloned()
    }

    async fn lookup_proxy_prefix(&self) -> Result<String> {
        let (ns, name) = (&self.namespace, &self.name);
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/services/{name}"),
                Vec::new(),
            )
            .await?;
        if status == StatusCode::NOT_FOUND {
            bail!(
                "cannot find the controller Service {ns}/{name}: set --controller-namespace and \
                 --controller-name (the Helm chart names it \"sealed-secrets\"), or seal offline with --cert"
            );
        }
        if !status.is_success() {
            bail!("cannot read the controller Service {ns}/{name}: HTTP {status}");
        }
        let service: serde_json::Value =
            serde_json::from_slice(&body).context("the Service is not valid JSON")?;
        let port = service
            .pointer("/spec/ports/0")
            .ok_or_else(|| anyhow!("the controller Service {ns}/{name} has no port"))?;
        let port = match port
            .get("name")
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
        {
            Some(port_name) => port_name.to_string(),
            None => port
                .get("port")
                .map(|p| p.to_string())
                .ok_or_else(|| anyhow!("the controller Service {ns}/{name} has no port"))?,
        };
        Ok(format!(
            "/api/v1/namespaces/{ns}/services/http:{name}:{port}/proxy"
        ))
    }

    pub async fn fetch_cert(&self) -> Result<String> {
        let path = format!("{}/v1/cert.pem", self.proxy_prefix().await?);
        let (status, body) = self.call(Method::GET, &path, Vec::new()).await?;
        if !status.is_success() {
            bail!("cannot fetch the certificate from the controller: HTTP {status}");
        }
        String::from_utf8(body).context("the controller's certificate is not text")
    }

    /// `Ok(true)` when the controller can decrypt the SealedSecret, `Ok(false)` when it cannot.
    pub async fn verify(&self, sealed_json: Vec<u8>) -> Result<bool> {
        let path = format!("{}/v1/verify", self.proxy_prefix().await?);
        let (status, _) = self.call(Method::POST, &path, sealed_json).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            other => bail!("the controller could not verify the SealedSecret: HTTP {other}"),
        }
    }

    /// The SealedSecret re-encrypted by the controller with its newest key.
    pub async fn rotate(&self, sealed_json: Vec<u8>) -> Result<Vec<u8>> {
        let path = format!("{}/v1/rotate", self.proxy_prefix().await?);
        let (status, body) = self.call(Method::POST, &path, sealed_json).await?;
        if !status.is_success() {
            let reason = String::from_utf8_lossy(&body).trim().to_string();
            bail!("the controller could not re-encrypt the SealedSecret: HTTP {status}: {reason}");
        }
        Ok(body)
    }

    /// One `/v1/rotate` request; "slow down" and "busy" are outcomes, not errors.
    pub async fn rotate_once(&self, sealed_json: Vec<u8>) -> Result<RotateOutcome> {
        let path = format!("{}/v1/rotate", self.proxy_prefix().await?);
        let (status, body) = self.call(Method::POST, &path, sealed_json).await?;
        match status {
            s if s.is_success() => Ok(RotateOutcome::Done(body)),
            StatusCode::TOO_MANY_REQUESTS => Ok(RotateOutcome::SlowDown),
            StatusCode::SERVICE_UNAVAILABLE => {
                Ok(RotateOutcome::Busy(std::time::Duration::from_secs(1)))
            }
            other => Ok(RotateOutcome::Refused(
                other,
                String::from_utf8_lossy(&body).trim().to_string(),
            )),
        }
    }
}

/// The Secrets labelled as sealing keys (any label value) in the controller's namespace. They
/// hold private keys: the caller wipes them.
pub async fn key_secrets(args: &Args) -> Result<Vec<k8s_openapi::api::core::v1::Secret>> {
    let namespace = &args.controller_namespace;
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(kube_client(args).await?, namespace);
    let params = kube::api::ListParams::default().labels(sealing::key_secret::LABEL_SEALING_KEY);
    let list = api
        .list(&params)
        .await
        .with_context(|| format!("cannot list the sealing key Secrets in namespace {namespace}"))?;
    Ok(list.items)
}

/// The PEM text of `--cert`: a path, `file://` or `http(s)://` URL.
pub fn read_cert_source(source: &str) -> Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        return block_on(async {
            let response = reqwest::get(source)
                .await
                .with_context(|| format!("cannot fetch certificate {source}"))?;
            let status = response.status();
            if !status.is_success() {
                bail!("cannot fetch certificate {source}: HTTP {status}");
            }
            response
                .text()
                .await
                .with_context(|| format!("cannot read certificate {source}"))
        })?;
    }
    let path = source.strip_prefix("file://").unwrap_or(source);
    std::fs::read_to_string(path).with_context(|| format!("cannot read certificate {path}"))
}

/// The sealing certificate's PEM: from `--cert`, else fetched from the controller.
pub fn sealing_cert_pem(args: &Args) -> Result<String> {
    match args.cert.first() {
        Some(source) => read_cert_source(source),
        None => {
            let pem = block_on(async {
                Controller::connect(args)
                    .await
                    .context("no --cert given, so the certificate must come from the controller")?
                    .fetch_cert()
                    .await
            })??;
            remember_cert(args, &pem);
            Ok(pem)
        }
    }
}

/// Caches the controller's certificate per kubeconfig context and warns when it changed.
fn remember_cert(args: &Args, pem: &str) {
    let context = args
        .context
        .clone()
        .or_else(|| read_kubeconfig(args).ok()?.current_context)
        .unwrap_or_else(|| "in-cluster".to_string());
    let (namespace, name) = (&args.controller_namespace, &args.controller_name);
    if let Some(path) = crate::cert_cache::path(&context, namespace, name) {
        let controller = format!("controller {namespace}/{name} (context {context})");
        crate::cert_cache::remember(&path, pem, &controller);
    }
}
