//! mysql and pgsql (`check_sql`): connect with login, passwd and database, run the request
//! as SQL, up when at least one row comes back. A login and a request are required, as in
//! Perl. Unlike Perl (which has no timeout here) the check is bounded by negotiatetimeout.
//! oracle has no pure-Rust client and is refused when the configuration is validated (see
//! [`ORACLE_UNSUPPORTED`]).

use super::net::Deadline;
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{SqlSpec, Target};

/// The message for `service=oracle`, for configuration validation to report.
pub const ORACLE_UNSUPPORTED: &str = "service=oracle is not supported: there is no pure-Rust Oracle client; \
     use checktype=external with a script that runs sqlplus, or service=none";

#[cfg_attr(not(any(feature = "mysql", feature = "pgsql")), allow(dead_code))]
fn precondition(spec: &SqlSpec) -> CheckResult {
    if spec.credentials.login.is_empty() || spec.query.is_empty() {
        return Err(Failure::new(
            FailureKind::Unsupported,
            "a login and a request are required for mysql and pgsql checks",
        ));
    }
    Ok(())
}

#[cfg_attr(not(any(feature = "mysql", feature = "pgsql")), allow(dead_code))]
fn no_rows() -> Failure {
    Failure::new(FailureKind::NoMatch, "the query returned no rows")
}

#[cfg(feature = "mysql")]
pub async fn check_mysql(spec: &SqlSpec, target: &Target, deadline: Deadline) -> CheckResult {
    use mysql_async::prelude::Queryable;

    precondition(spec)?;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(target.addr.to_string())
        .tcp_port(target.port)
        .user(Some(spec.credentials.login.clone()))
        .pass(Some(spec.credentials.passwd.clone()))
        .db_name((!spec.database.is_empty()).then(|| spec.database.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0);
    let sql_failure = |e: mysql_async::Error| {
        let kind = match &e {
            mysql_async::Error::Io(_) => FailureKind::Io,
            mysql_async::Error::Server(s) if matches!(s.code, 1044 | 1045 | 1049) => {
                FailureKind::Auth
            }
            _ => FailureKind::Protocol,
        };
        Failure::new(kind, format!("mysql: {e}"))
    };
    let mut conn = deadline
        .step("mysql connect", async {
            mysql_async::Conn::new(opts).await.map_err(sql_failure)
        })
        .await?;
    let row: Option<mysql_async::Row> = deadline
        .step("mysql query", async {
            conn.query_first(spec.query.as_str())
                .await
                .map_err(sql_failure)
        })
        .await?;
    let grace = deadline
        .remaining()
        .min(std::time::Duration::from_millis(200));
    let _ = tokio::time::timeout(grace, conn.disconnect()).await;
    row.map(|_| ()).ok_or_else(no_rows)
}

#[cfg(not(feature = "mysql"))]
pub async fn check_mysql(_spec: &SqlSpec, _target: &Target, _deadline: Deadline) -> CheckResult {
    Err(Failure::new(
        FailureKind::Unsupported,
        "built without the mysql feature",
    ))
}

#[cfg(feature = "pgsql")]
pub async fn check_pgsql(spec: &SqlSpec, target: &Target, deadline: Deadline) -> CheckResult {
    use tokio_postgres::SimpleQueryMessage;

    precondition(spec)?;
    let stream = super::net::connect_tcp(target.socket_addr(), target.datapath, deadline).await?;
    let mut config = tokio_postgres::Config::new();
    config
        .user(spec.credentials.login.as_str())
        .password(spec.credentials.passwd.as_str())
        .host(target.addr.to_string());
    if !spec.database.is_empty() {
        config.dbname(spec.database.as_str());
    }
    let pg_failure = |e: tokio_postgres::Error| {
        let kind = match e.code() {
            Some(c) if c.code().starts_with("28") || c.code() == "3D000" => FailureKind::Auth,
            _ if e.is_closed() => FailureKind::Closed,
            _ => FailureKind::Protocol,
        };
        Failure::new(kind, format!("pgsql: {e}"))
    };
    let (client, connection) = deadline
        .step("pgsql startup", async {
            config
                .connect_raw(stream, tokio_postgres::NoTls)
                .await
                .map_err(pg_failure)
        })
        .await?;
    // The connection object does the I/O; it is driven here rather than spawned so that it
    // ends with the check.
    let work = async {
        let messages = client.simple_query(&spec.query).await.map_err(pg_failure)?;
        let rows = messages
            .iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count();
        Ok::<usize, Failure>(rows)
    };
    let rows = deadline
        .step("pgsql query", async {
            tokio::pin!(work);
            tokio::pin!(connection);
            tokio::select! {
                rows = &mut work => rows,
                result = &mut connection => match result {
                    Err(e) => Err(pg_failure(e)),
                    Ok(()) => Err(Failure::new(FailureKind::Closed, "pgsql: connection closed")),
                },
            }
        })
        .await?;
    if rows > 0 { Ok(()) } else { Err(no_rows()) }
}

#[cfg(not(feature = "pgsql"))]
pub async fn check_pgsql(_spec: &SqlSpec, _target: &Target, _deadline: Deadline) -> CheckResult {
    Err(Failure::new(
        FailureKind::Unsupported,
        "built without the pgsql feature",
    ))
}
