//! Scratch databases on a PostgreSQL server, for benchmarks.

use super::*;

/// Creates (anew: an existing one is dropped) database `name` on the PostgreSQL server of
/// `server_url`, for benchmarks; returns its URL. `name` must be a plain identifier.
pub async fn create_scratch_database(server_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::NotFound(format!(
            "a plain database name (got `{name}`)"
        )));
    }
    let mut url = url::Url::parse(server_url)
        .map_err(|e| StoreError::Db(sqlx::Error::Configuration(Box::new(e))))?;
    let mut admin = sqlx::PgConnection::connect(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    url.set_path(name);
    Ok(url.to_string())
}

/// Drops a database made by [`create_scratch_database`].
pub async fn drop_scratch_database(server_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    Ok(())
}
