//! ESO's own template functions for PEM material (runtime/template/v2/pem.go, pem_chain.go).
//! The PKCS#12, JWK and RSA ones are named here so a template using them gets a clear
//! "not implemented" error rather than "function not defined".

use super::{R, arity, string, text};
use crate::exec::Budget;
use crate::value::Value;

pub(super) const NAMES: &[&str] = &[
    "filterPEM",
    "filterCertChain",
    "certSANs",
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "pemTruststoreToPKCS12",
    "pemTruststoreToPKCS12Pass",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
    "rsaDecrypt",
];

/// The functions of ESO's template engine this one does not implement yet.
pub const NOT_IMPLEMENTED: &[&str] = &[
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "pemTruststoreToPKCS12",
    "pemTruststoreToPKCS12Pass",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
    "rsaDecrypt",
];

const CERTIFICATE: &str = "CERTIFICATE";

pub(super) fn call(name: &str, args: Vec<Value>, budget: &mut Budget) -> R<Value> {
    let a = &args;
    match name {
        "filterPEM" => {
            arity(name, a, 2)?;
            let want = text(&a[0])?;
            let input = trim_junk(string(&a[1])?);
            let blocks = decode_all(input);
            let mut out = Vec::new();
            for b in &blocks {
                if b.tag().eq_ignore_ascii_case(&want) {
                    out.extend_from_slice(encode(b).as_bytes());
                }
            }
            if out.is_empty() && blocks.is_empty() && !input.is_empty() {
                return Err("error filtering pem: found junk".into());
            }
            Ok(Value::str(out))
        }
        "filterCertChain" => {
            arity(name, a, 2)?;
            let kind = text(&a[0])?;
            let chain = ordered_chain(string(&a[1])?, budget)?;
            let pem_of = |c: &Cert| encode(&pem::Pem::new(CERTIFICATE, c.der.clone()));
            let out = match kind.as_str() {
                "leaf" => {
                    let leaf = &chain[0];
                    if leaf.aki.is_some() && leaf.aki != leaf.ski {
                        pem_of(leaf)
                    } else {
                        String::new()
                    }
                }
                "intermediate" => chain
                    .iter()
                    .skip(1)
                    .take_while(|c| !c.is_root())
                    .map(pem_of)
                    .collect(),
                "root" => match chain.last() {
                    Some(c) if c.is_root() => pem_of(c),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            Ok(Value::str(out))
        }
        "certSANs" => {
            arity(name, a, 1)?;
            let input = trim_junk(string(&a[0])?);
            let block = decode_all(input)
                .into_iter()
                .next()
                .ok_or_else(|| "failed to decode PEM block".to_string())?;
            let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
                .map_err(|_| "failed to parse certificate".to_string())?;
            let (mut dns, mut ips, mut emails, mut uris) = (vec![], vec![], vec![], vec![]);
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                use x509_parser::extensions::GeneralName;
                for n in &san.value.general_names {
                    match n {
                        GeneralName::DNSName(d) => dns.push(d.to_string()),
                        GeneralName::IPAddress(ip) => ips.push(ip_string(ip)),
                        GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                        GeneralName::URI(u) => uris.push(u.to_string()),
                        _ => {}
                    }
                }
            }
            Ok(Value::list(
                dns.into_iter()
                    .chain(ips)
                    .chain(emails)
                    .chain(uris)
                    .map(|s| Value::str(s.into_bytes()))
                    .collect(),
            ))
        }
        other => Err(format!(
            "{other} is not implemented by this controller (see docs/external-secrets.md)"
        )),
    }
}

/// As Go's pem.Decode before Go 1.26: anything before the first BEGIN line is ignored.
fn trim_junk(input: &[u8]) -> &[u8] {
    match input.windows(10).position(|w| w == b"-----BEGIN") {
        Some(i) => &input[i..],
        None => input,
    }
}

fn decode_all(input: &[u8]) -> Vec<pem::Pem> {
    pem::parse_many(input).unwrap_or_default()
}

fn encode(p: &pem::Pem) -> String {
    pem::encode_config(
        p,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn ip_string(ip: &[u8]) -> String {
    match ip.len() {
        4 => std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(ip);
            let v6 = std::net::Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        }
        _ => format!("?{}", hex::encode(ip)),
    }
}

struct Cert {
    der: Vec<u8>,
    /// Go's AuthorityKeyId / SubjectKeyId: nil (None) when absent.
    aki: Option<Vec<u8>>,
    ski: Option<Vec<u8>>,
}

impl Cert {
    fn is_root(&self) -> bool {
        self.aki.is_none() || self.aki == self.ski
    }
}

/// ESO's fetchX509CertChains: leaf first, then each issuer by key identifier.
fn ordered_chain(input: &[u8], budget: &mut Budget) -> R<Vec<Cert>> {
    use x509_parser::extensions::ParsedExtension;
    let mut certs = Vec::new();
    for block in decode_all(input) {
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
            .map_err(|_| "x509: malformed certificate".to_string())?;
        let (mut aki, mut ski) = (None, None);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
                _ => {}
            }
        }
        certs.push(Cert {
            der: block.contents().to_vec(),
            aki,
            ski,
        });
    }
    budget.step((certs.len() as u64).saturating_mul(certs.len() as u64) / 16)?;
    let empty: Vec<u8> = Vec::new();
    let key = |k: &Option<Vec<u8>>| k.as_ref().unwrap_or(&empty).clone();
    let mut parent: Vec<Option<usize>> = vec![None; certs.len()];
    let mut is_parent = vec![false; certs.len()];
    for i in 0..certs.len() {
        for j in 0..certs.len() {
            if i != j && key(&certs[i].aki) == key(&certs[j].ski) {
                is_parent[j] = true;
                parent[i] = Some(j);
                break;
            }
        }
    }
    let mut leaf = None;
    for (i, p) in is_parent.iter().enumerate() {
        if !p {
            if leaf.is_some() {
                return Err("found multiple leaf or disjunct certificates".into());
            }
            leaf = Some(i);
        }
    }
    let Some(mut cur) = leaf else {
        return Err("no leaf certificate found".into());
    };
    let mut order = vec![cur];
    while let Some(p) = parent[cur] {
        if order.len() >= certs.len() {
            return Err("constructing chain resulted in cycle".into());
        }
        order.push(p);
        cur = p;
    }
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}
