//! ESO's own template functions for PEM and JWK material (runtime/template/v2/pem.go,
//! pem_chain.go, jwk.go). The PKCS#12 and RSA ones are named here so a template using them
//! gets a clear "not implemented" error rather than "function not defined".

use super::{R, arity, string, text};
use crate::budget::Budget;
use crate::value::Value;

pub(super) const NAMES: &[&str] = &[
    "filterPEM",
    "filterCertChain",
    "certSANs",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
    "rsaDecrypt",
];

/// The functions of ESO's template engine this one does not implement.
pub const NOT_IMPLEMENTED: &[&str] = &[];

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
        "rsaDecrypt" => {
            arity(name, a, 4)?;
            let (scheme, hash) = (text(&a[0])?, text(&a[1])?);
            let (input, key) = (string(&a[2])?, string(&a[3])?);
            match scheme.as_str() {
                "None" => Ok(Value::str(input.to_vec())),
                "RSA-OAEP" => rsa_oaep_decrypt(&hash, input, key).map(Value::str),
                _ => Err("decryption scheme is not supported (RSA-OAEP or None)".into()),
            }
        }
        "jwkPublicKeyPem" | "jwkPrivateKeyPem" => {
            arity(name, a, 1)?;
            let jwk: serde_json::Value = serde_json::from_slice(string(&a[0])?)
                .map_err(|_| "failed to parse JWK: not JSON".to_string())?;
            let (der, label) = if name == "jwkPublicKeyPem" {
                (jwk::public_spki(&jwk)?, "PUBLIC KEY")
            } else {
                (jwk::private_pkcs8(&jwk)?, "PRIVATE KEY")
            };
            Ok(Value::str(encode(&pem::Pem::new(label, der))))
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

pub(super) fn encode(p: &pem::Pem) -> String {
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

/// `pem` (certificate blocks) ordered leaf to root, as ESO's fetchCertChains.
pub(super) fn ordered_pem(pem: &[u8], budget: &mut Budget) -> R<Vec<u8>> {
    let chain = ordered_chain(pem, budget)?;
    Ok(chain
        .iter()
        .flat_map(|c| encode(&pem::Pem::new(CERTIFICATE, c.der.clone())).into_bytes())
        .collect())
}

/// An RSA key in PKCS#1 DER wrapped as PKCS#8.
pub(super) fn pkcs1_to_pkcs8(der: &[u8]) -> Vec<u8> {
    jwk::pkcs1_to_pkcs8(der)
}

/// ESO's rsaDecrypt: OAEP with the same hash for MGF1 (SHA256 unless SHA1 or SHA512 is named),
/// the key in PKCS#8 or PKCS#1 PEM.
fn rsa_oaep_decrypt(hash: &str, ciphertext: &[u8], key_pem: &[u8]) -> R<Vec<u8>> {
    use aws_lc_rs::rsa;
    let block = decode_all(key_pem)
        .into_iter()
        .next()
        .ok_or_else(|| "failed to decode PEM block".to_string())?;
    let der = if block.tag() == "RSA PRIVATE KEY" {
        jwk::pkcs1_to_pkcs8(block.contents())
    } else {
        block.contents().to_vec()
    };
    let key = rsa::PrivateDecryptingKey::from_pkcs8(&der)
        .map_err(|_| "could not parse private key".to_string())?;
    let key = rsa::OaepPrivateDecryptingKey::new(key)
        .map_err(|_| "could not parse RSA private key".to_string())?;
    let algorithm = match hash {
        "SHA1" => &rsa::OAEP_SHA1_MGF1SHA1,
        "SHA512" => &rsa::OAEP_SHA512_MGF1SHA512,
        _ => &rsa::OAEP_SHA256_MGF1SHA256,
    };
    let mut out = zeroize::Zeroizing::new(vec![0u8; key.min_output_size()]);
    let plain = key
        .decrypt(algorithm, ciphertext, &mut out, None)
        .map_err(|_| "error decrypting data with RSA".to_string())?;
    Ok(plain.to_vec())
}

/// JWK (RFC 7517) to the DER Go's x509.MarshalPKIXPublicKey / MarshalPKCS8PrivateKey write.
mod jwk {
    use base64::Engine as _;

    const RSA: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
    ];
    const EC: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    const ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[&[u8]]) -> Vec<u8> {
        der(0x30, &parts.concat())
    }

    fn uint(be: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = be.iter().copied().skip_while(|&b| b == 0).collect();
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(&trimmed);
        der(0x02, &content)
    }

    fn bits(bytes: &[u8]) -> Vec<u8> {
        let mut content = vec![0u8];
        content.extend_from_slice(bytes);
        der(0x03, &content)
    }

    fn field(jwk: &serde_json::Value, name: &str) -> Result<Vec<u8>, String> {
        let text = jwk
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("failed to parse JWK: missing {name:?}"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("failed to parse JWK: {name:?} is not base64url"))
    }

    fn curve(jwk: &serde_json::Value) -> Result<(&'static [u8], usize), String> {
        match jwk.get("crv").and_then(|v| v.as_str()) {
            Some("P-256") => Ok((
                &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
                32,
            )),
            Some("P-384") => Ok((&[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22], 48)),
            Some("P-521") => Ok((&[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23], 66)),
            _ => Err("failed to parse JWK: unsupported curve".into()),
        }
    }

    fn pad(mut v: Vec<u8>, len: usize) -> Vec<u8> {
        while v.len() < len {
            v.insert(0, 0);
        }
        v
    }

    fn ec_point(jwk: &serde_json::Value, size: usize) -> Result<Vec<u8>, String> {
        let mut point = vec![4u8];
        point.extend(pad(field(jwk, "x")?, size));
        point.extend(pad(field(jwk, "y")?, size));
        Ok(point)
    }

    fn kty(jwk: &serde_json::Value) -> &str {
        jwk.get("kty").and_then(|v| v.as_str()).unwrap_or("")
    }

    /// Wraps a PKCS#1 RSAPrivateKey in PKCS#8.
    pub(super) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
        seq(&[
            &[0x02, 0x01, 0x00],
            &seq(&[RSA, &[0x05, 0x00]]),
            &der(0x04, pkcs1),
        ])
    }

    pub(super) fn public_spki(jwk: &serde_json::Value) -> Result<Vec<u8>, String> {
        match kty(jwk) {
            "RSA" => {
                let key = seq(&[&uint(&field(jwk, "n")?), &uint(&field(jwk, "e")?)]);
                Ok(seq(&[&seq(&[RSA, &[0x05, 0x00]]), &bits(&key)]))
            }
            "EC" => {
                let (oid, size) = curve(jwk)?;
                Ok(seq(&[&seq(&[EC, oid]), &bits(&ec_point(jwk, size)?)]))
            }
            "OKP" if jwk.get("crv").and_then(|v| v.as_str()) == Some("Ed25519") => {
                Ok(seq(&[&seq(&[ED25519]), &bits(&field(jwk, "x")?)]))
            }
            _ => Err("failed to parse JWK: unsupported key type".into()),
        }
    }

    pub(super) fn private_pkcs8(jwk: &serde_json::Value) -> Result<Vec<u8>, String> {
        let version = [0x02, 0x01, 0x00];
        match kty(jwk) {
            "RSA" => {
                let names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
                let mut parts = vec![version.to_vec()];
                for n in names {
                    parts.push(uint(&field(jwk, n)?));
                }
                let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                let rsa = seq(&refs);
                Ok(seq(&[
                    &version,
                    &seq(&[RSA, &[0x05, 0x00]]),
                    &der(0x04, &rsa),
                ]))
            }
            "EC" => {
                let (oid, size) = curve(jwk)?;
                let d = pad(field(jwk, "d")?, size);
                let ec = seq(&[
                    &[0x02, 0x01, 0x01],
                    &der(0x04, &d),
                    &der(0xA1, &bits(&ec_point(jwk, size)?)),
                ]);
                Ok(seq(&[&version, &seq(&[EC, oid]), &der(0x04, &ec)]))
            }
            "OKP" if jwk.get("crv").and_then(|v| v.as_str()) == Some("Ed25519") => {
                let seed = field(jwk, "d")?;
                Ok(seq(&[
                    &version,
                    &seq(&[ED25519]),
                    &der(0x04, &der(0x04, &seed)),
                ]))
            }
            _ => Err("failed to parse JWK: unsupported key type".into()),
        }
    }
}
