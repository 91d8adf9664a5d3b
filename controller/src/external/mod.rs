//! ExternalSecret sync from Vault and AWS Secrets Manager (External Secrets Operator compatible).
