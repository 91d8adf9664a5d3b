//! Sprig's crypto functions: bcrypt/htpasswd, derivePassword (Master Password), random ints
//! and bytes, AES-CBC as Sprig frames it, private keys and the certificate generators. Each
//! costly operation is charged to the budget up front, so a template cannot loop key generation.

use std::rc::Rc;

use aws_lc_rs::encoding::AsDer as _;
use base64::Engine as _;
use rand::Rng as _;
use zeroize::Zeroizing;

use super::{R, arity, count, int, pki, string, text, wrong_type};
use crate::budget::Budget;
use crate::value::{Object, Value};

pub(super) const NAMES: &[&str] = &[
    "bcrypt",
    "htpasswd",
    "derivePassword",
    "randInt",
    "randBytes",
    "encryptAES",
    "decryptAES",
    "genPrivateKey",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
];

// Budget steps of the costly operations, about one per microsecond of CPU on a small core:
// a run may make a few keys or hashes, not thousands.
const BCRYPT_STEPS: u64 = 60_000;
const SCRYPT_STEPS: u64 = 120_000;
const RSA_2048_STEPS: u64 = 100_000;
const RSA_4096_STEPS: u64 = 400_000;
const EC_STEPS: u64 = 1_000;

/// Sprig's bcrypt: cost 10, the `$2a$` form Go writes.
fn bcrypt_hash(password: &[u8], budget: &mut Budget) -> R<String> {
    budget.step(BCRYPT_STEPS)?;
    let salt: [u8; 16] = rand::rng().random();
    let parts = bcrypt::hash_with_salt(password, 10, salt)
        .map_err(|e| format!("failed to encrypt string with bcrypt: {e}"))?;
    Ok(parts.format_for_version(bcrypt::Version::TwoA))
}

const SEED: &[u8] = b"com.lyndir.masterpassword";

fn templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

fn template_chars(c: u8) -> &'static [u8] {
    match c {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// The Master Password algorithm Sprig implements: scrypt(N=32768, r=8, p=2) of the password
/// salted with the user name, HMAC-SHA256 of the site and counter, then a character template.
fn derive_password(
    counter: u32,
    kind: &str,
    password: &[u8],
    user: &[u8],
    site: &[u8],
    budget: &mut Budget,
) -> R<String> {
    use hmac_013::{KeyInit as _, Mac as _};
    let Some(templates) = templates(kind) else {
        return Ok(format!("cannot find password template {kind}"));
    };
    budget.step(SCRYPT_STEPS)?;
    let len32 = |b: &[u8]| u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes();
    let mut salt = SEED.to_vec();
    salt.extend_from_slice(&len32(user));
    salt.extend_from_slice(user);
    let params = scrypt::Params::new(15, 8, 2, 64).map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 64]);
    scrypt::scrypt(password, &salt, &params, &mut key[..]).map_err(|e| e.to_string())?;
    let mut mac =
        hmac_013::Hmac::<sha2_011::Sha256>::new_from_slice(&key[..]).map_err(|e| e.to_string())?;
    mac.update(SEED);
    mac.update(&len32(site));
    mac.update(site);
    mac.update(&counter.to_be_bytes());
    let seed = mac.finalize().into_bytes();
    let template = templates[usize::from(seed[0]) % templates.len()].as_bytes();
    Ok(template
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let chars = template_chars(c);
            char::from(chars[usize::from(seed[i + 1]) % chars.len()])
        })
        .collect())
}

/// Sprig's AES: the password zero-padded or cut to a 32-byte key, AES-256-CBC with PKCS#7
/// padding and a random IV in front, base64.
fn aes_key(password: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password[..n]);
    key
}

fn encrypt_aes(password: &[u8], plaintext: &[u8]) -> R<String> {
    use cbc::cipher::{BlockModeEncrypt as _, KeyIvInit as _, block_padding::Pkcs7};
    if plaintext.is_empty() {
        return Ok(String::new());
    }
    let key = aes_key(password);
    let iv: [u8; 16] = rand::rng().random();
    let enc = cbc::Encryptor::<aes::Aes256>::new((&*key).into(), &iv.into());
    let mut out = iv.to_vec();
    out.extend_from_slice(&enc.encrypt_padded_vec::<Pkcs7>(plaintext));
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

fn decrypt_aes(password: &[u8], encoded: &[u8]) -> R<Vec<u8>> {
    use cbc::cipher::{BlockModeDecrypt as _, KeyIvInit as _, block_padding::NoPadding};
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("illegal base64 data: {e}"))?;
    if data.len() < 32 || data.len() % 16 != 0 {
        return Err("crypto/cipher: input not full blocks".into());
    }
    let key = aes_key(password);
    let (iv, body) = data.split_at(16);
    let iv: [u8; 16] = iv.try_into().map_err(|_| "crypto/cipher: bad IV length")?;
    let dec = cbc::Decryptor::<aes::Aes256>::new((&*key).into(), &iv.into());
    let mut plain = dec
        .decrypt_padded_vec::<NoPadding>(body)
        .map_err(|_| "crypto/cipher: input not full blocks".to_string())?;
    // Sprig strips as many bytes as the last one says, without checking them.
    let pad = usize::from(plain.last().copied().unwrap_or(0));
    if pad > plain.len() {
        return Err("slice bounds out of range: padding longer than the plaintext".into());
    }
    plain.truncate(plain.len() - pad);
    Ok(plain)
}

/// A private key as Go's pemBlockForKey writes it: RSA as PKCS#1, EC as SEC1, others PKCS#8.
struct Key {
    pkcs8: Zeroizing<Vec<u8>>,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

impl Key {
    fn generate(kind: &str, rsa_bits: usize, budget: &mut Budget) -> R<Key> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = match kind {
            "" | "rsa" => {
                let size = if rsa_bits == 4096 {
                    budget.step(RSA_4096_STEPS)?;
                    aws_lc_rs::rsa::KeySize::Rsa4096
                } else {
                    budget.step(RSA_2048_STEPS)?;
                    aws_lc_rs::rsa::KeySize::Rsa2048
                };
                let key = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|e| e.to_string())?;
                key.as_der().map_err(|e| e.to_string())?.as_ref().to_vec()
            }
            "ecdsa" => {
                budget.step(EC_STEPS)?;
                aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &rng,
                )
                .map_err(|e| e.to_string())?
                .as_ref()
                .to_vec()
            }
            "ed25519" => {
                budget.step(EC_STEPS)?;
                aws_lc_rs::signature::Ed25519KeyPair::generate()
                    .and_then(|k| k.to_pkcs8v1())
                    .map_err(|e| e.to_string())?
                    .as_ref()
                    .to_vec()
            }
            "dsa" => {
                return Err(
                    "DSA keys are not supported (deprecated; use rsa, ecdsa or ed25519)".into(),
                );
            }
            other => return Err(format!("Unknown type {other}")),
        };
        Ok(Key {
            pkcs8: Zeroizing::new(pkcs8),
        })
    }

    /// Sprig's parsePrivateKeyPEM: PKCS#8, PKCS#1 or SEC1 PEM.
    fn parse(pem_text: &[u8]) -> R<Key> {
        let block = pem::parse_many(pem_text)
            .ok()
            .and_then(|v| v.into_iter().next())
            .ok_or("no PEM data in input")?;
        let der = block.contents();
        let pkcs8 = match block.tag() {
            "PRIVATE KEY" => der.to_vec(),
            "RSA PRIVATE KEY" => pki::pkcs1_to_pkcs8(der),
            "EC PRIVATE KEY" => ec_curves()
                .iter()
                .find_map(|alg| {
                    aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(alg, der).ok()
                })
                .ok_or("parsing EC private key from PEM: invalid key")?
                .to_pkcs8v1()
                .map_err(|e| e.to_string())?
                .as_ref()
                .to_vec(),
            tag if tag.ends_with(" PRIVATE KEY") => {
                return Err(format!("invalid private key type {tag}"));
            }
            tag => return Err(format!("no private key data in PEM block of type {tag}")),
        };
        let key = Key {
            pkcs8: Zeroizing::new(pkcs8),
        };
        key.key_pair()?;
        Ok(key)
    }

    fn key_pair(&self) -> R<rcgen::KeyPair> {
        rcgen::KeyPair::try_from(&self.pkcs8[..]).map_err(|e| format!("parsing private key: {e}"))
    }

    fn to_pem(&self) -> R<String> {
        use pkcs8::der::Decode as _;
        let info = pkcs8::PrivateKeyInfo::from_der(&self.pkcs8).map_err(|e| e.to_string())?;
        let block = match info.algorithm.oid.to_string().as_str() {
            OID_RSA => pem::Pem::new("RSA PRIVATE KEY", info.private_key.to_vec()),
            OID_EC => {
                let key = ec_curves()
                    .iter()
                    .find_map(|alg| {
                        aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, &self.pkcs8).ok()
                    })
                    .ok_or("unsupported EC curve")?;
                let sec1 = key.private_key().as_der().map_err(|e| e.to_string())?;
                pem::Pem::new("EC PRIVATE KEY", sec1.as_ref().to_vec())
            }
            // Go writes PKCS#8 v1 (no public key), which every openssl reads.
            _ => {
                match aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8)
                {
                    Ok(key) => pem::Pem::new(
                        "PRIVATE KEY",
                        key.to_pkcs8v1()
                            .map_err(|e| e.to_string())?
                            .as_ref()
                            .to_vec(),
                    ),
                    Err(_) => pem::Pem::new("PRIVATE KEY", self.pkcs8.to_vec()),
                }
            }
        };
        Ok(pki::encode(&block))
    }
}

fn ec_curves() -> [&'static aws_lc_rs::signature::EcdsaSigningAlgorithm; 3] {
    use aws_lc_rs::signature::*;
    [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &ECDSA_P521_SHA512_ASN1_SIGNING,
    ]
}

/// Sprig's getBaseCertTemplate: the common name, IP and DNS SANs, valid from now for
/// `days`, server and client auth, a random 128-bit serial.
fn base_params(cn: &str, ips: &Value, dns: &Value, days: i64) -> R<rcgen::CertificateParams> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    for ip in list_of_strings(ips, "ip")? {
        let addr = ip
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("error parsing ip: {ip}"))?;
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(addr));
    }
    for name in list_of_strings(dns, "alternate dns name")? {
        let name = rcgen::string::Ia5String::try_from(name.as_str())
            .map_err(|_| format!("error processing alternate dns name: {name} is not IA5"))?;
        params.subject_alt_names.push(rcgen::SanType::DnsName(name));
    }
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = days
        .checked_mul(86_400)
        .and_then(|secs| now.checked_add(time::Duration::seconds(secs)))
        .filter(|t| (-9999..=9999).contains(&t.year()))
        .ok_or("certificate validity out of range")?;
    let mut serial: [u8; 16] = rand::rng().random();
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    Ok(params)
}

fn list_of_strings(v: &Value, what: &str) -> R<Vec<String>> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Ok(String::from_utf8_lossy(s).into_owned()),
                other => Err(format!(
                    "error parsing {what}: value of type {} is not a string",
                    other.type_name()
                )),
            })
            .collect(),
        _ => Err(wrong_type("[]interface {}", v)),
    }
}

fn certificate(cert: String, key: String) -> Value {
    Value::Object(Rc::new(Object::Certificate {
        cert: Rc::new(Zeroizing::new(cert.into_bytes())),
        key: Rc::new(Zeroizing::new(key.into_bytes())),
    }))
}

fn self_signed(params: rcgen::CertificateParams, key: &Key) -> R<Value> {
    let pair = key.key_pair()?;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| format!("error creating certificate: {e}"))?;
    Ok(certificate(cert.pem().replace("\r\n", "\n"), key.to_pem()?))
}

fn ca_arg(v: &Value) -> R<(String, Key)> {
    match v {
        Value::Object(o) => match &**o {
            Object::Certificate { cert, key } => {
                Ok((String::from_utf8_lossy(cert).into_owned(), Key::parse(key)?))
            }
            _ => Err(wrong_type("sprig.certificate", v)),
        },
        _ => Err(wrong_type("sprig.certificate", v)),
    }
}

fn signed(params: rcgen::CertificateParams, key: &Key, ca: &Value) -> R<Value> {
    let (ca_pem, ca_key) = ca_arg(ca)?;
    let ca_pair = ca_key.key_pair()?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, &ca_pair)
        .map_err(|e| format!("error parsing certificate: {e}"))?;
    let pair = key.key_pair()?;
    let cert = params
        .signed_by(&pair, &issuer)
        .map_err(|e| format!("error creating certificate: {e}"))?;
    Ok(certificate(cert.pem().replace("\r\n", "\n"), key.to_pem()?))
}

pub(super) fn call(name: &str, a: Vec<Value>, budget: &mut Budget) -> R<Value> {
    match name {
        "bcrypt" => {
            arity(name, &a, 1)?;
            Ok(Value::str(bcrypt_hash(string(&a[0])?, budget)?))
        }
        "htpasswd" => {
            arity(name, &a, 2)?;
            let user = string(&a[0])?;
            if user.contains(&b':') {
                let mut out = b"invalid username: ".to_vec();
                out.extend_from_slice(user);
                return Ok(Value::str(out));
            }
            let mut out = user.to_vec();
            out.push(b':');
            out.extend_from_slice(bcrypt_hash(string(&a[1])?, budget)?.as_bytes());
            Ok(Value::str(out))
        }
        "derivePassword" => {
            arity(name, &a, 5)?;
            let counter = u32::try_from(int(&a[0])?)
                .map_err(|_| "derivePassword: the counter must fit in a uint32".to_string())?;
            let out = derive_password(
                counter,
                &text(&a[1])?,
                string(&a[2])?,
                string(&a[3])?,
                string(&a[4])?,
                budget,
            )?;
            Ok(Value::str(out))
        }
        "randInt" => {
            arity(name, &a, 2)?;
            let (min, max) = (int(&a[0])?, int(&a[1])?);
            if max.checked_sub(min).is_none_or(|span| span <= 0) {
                return Err("invalid argument to Intn".into());
            }
            Ok(Value::Int(rand::rng().random_range(min..max)))
        }
        "randBytes" => {
            arity(name, &a, 1)?;
            if int(&a[0])? < 0 {
                return Err("makeslice: len out of range".into());
            }
            // The base64 output is a third longer than the bytes.
            let n = count(&a[0], budget, name, 2)?;
            let mut buf = Zeroizing::new(vec![0u8; n]);
            rand::rng().fill(&mut buf[..]);
            Ok(Value::str(
                base64::engine::general_purpose::STANDARD.encode(&buf[..]),
            ))
        }
        "encryptAES" => {
            arity(name, &a, 2)?;
            Ok(Value::str(encrypt_aes(string(&a[0])?, string(&a[1])?)?))
        }
        "decryptAES" => {
            arity(name, &a, 2)?;
            Ok(Value::str(decrypt_aes(string(&a[0])?, string(&a[1])?)?))
        }
        "genPrivateKey" => {
            arity(name, &a, 1)?;
            let kind = text(&a[0])?;
            match Key::generate(&kind, 4096, budget) {
                Ok(key) => Ok(Value::str(key.to_pem()?)),
                // Sprig returns this message as the value.
                Err(e) if e.starts_with("Unknown type") => Ok(Value::str(e)),
                Err(e) => Err(e),
            }
        }
        "buildCustomCert" => {
            arity(name, &a, 2)?;
            let b64 = base64::engine::general_purpose::STANDARD;
            let cert = b64
                .decode(string(&a[0])?)
                .map_err(|_| "unable to decode base64 certificate".to_string())?;
            let key = b64
                .decode(string(&a[1])?)
                .map_err(|_| "unable to decode base64 private key".to_string())?;
            let block = pem::parse_many(&cert)
                .ok()
                .and_then(|v| v.into_iter().next())
                .ok_or("unable to decode certificate")?;
            x509_parser::parse_x509_certificate(block.contents())
                .map_err(|e| format!("error parsing certificate: decodedCert.Bytes: {e}"))?;
            Key::parse(&key).map_err(|e| format!("error parsing private key: {e}"))?;
            Ok(certificate(
                String::from_utf8_lossy(&cert).into_owned(),
                String::from_utf8_lossy(&key).into_owned(),
            ))
        }
        "genCA" | "genCAWithKey" => {
            arity(name, &a, if name == "genCA" { 2 } else { 3 })?;
            let cn = text(&a[0])?;
            let days = int(&a[1])?;
            let key = match a.get(2) {
                Some(k) => Key::parse(string(k)?)?,
                None => Key::generate("rsa", 2048, budget)?,
            };
            let mut params = base_params(&cn, &Value::Nil, &Value::Nil, days)?;
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
            self_signed(params, &key)
        }
        "genSelfSignedCert" | "genSelfSignedCertWithKey" => {
            arity(name, &a, if name == "genSelfSignedCert" { 4 } else { 5 })?;
            let key = match a.get(4) {
                Some(k) => Key::parse(string(k)?)?,
                None => Key::generate("rsa", 2048, budget)?,
            };
            let params = base_params(&text(&a[0])?, &a[1], &a[2], int(&a[3])?)?;
            self_signed(params, &key)
        }
        "genSignedCert" | "genSignedCertWithKey" => {
            arity(name, &a, if name == "genSignedCert" { 5 } else { 6 })?;
            let key = match a.get(5) {
                Some(k) => Key::parse(string(k)?)?,
                None => Key::generate("rsa", 2048, budget)?,
            };
            let params = base_params(&text(&a[0])?, &a[1], &a[2], int(&a[3])?)?;
            signed(params, &key, &a[4])
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}
