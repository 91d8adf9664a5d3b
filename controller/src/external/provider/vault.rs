//! Vault provider (filled in below).
