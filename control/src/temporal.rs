//! Connecting to Temporal, with errors that say what to start when it is missing.

use std::{collections::HashMap, time::Duration};

use herald_wire::names;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression, Url,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::IndexedValueType,
    operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
};
use tracing::info;

use crate::{
    ControlError,
    config::{Compression, Config},
};

/// Connect to the Temporal frontend, failing within a few seconds with a hint when it is
/// not running.
pub async fn connect(config: &Config) -> Result<Client, ControlError> {
    let address = &config.temporal_address;
    let unreachable = |reason: String| ControlError::TemporalUnreachable {
        address: address.clone(),
        reason,
    };
    let url = if address.contains("://") {
        address.clone()
    } else {
        format!("http://{address}")
    };
    let url = Url::parse(&url).map_err(|_| {
        ControlError::Config(format!("TEMPORAL_ADDRESS {address:?} is not a host:port"))
    })?;
    let options = ConnectionOptions::new(url.clone())
        .identity(format!("herald@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .grpc_compression(compression(config.grpc_compression, &url))
        .build();
    let connection = tokio::time::timeout(Duration::from_secs(10), Connection::connect(options))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    Client::new(
        connection,
        ClientOptions::new(config.temporal_namespace.clone()).build(),
    )
    .map_err(|e| unreachable(e.to_string()))
}

/// Ask Temporal something cheap (the namespace), within a few seconds: whether it answers.
pub async fn ping(client: &Client, config: &Config) -> Result<(), ControlError> {
    let request = temporalio_client::tonic::Request::new(
        temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest {
            namespace: config.temporal_namespace.clone(),
            ..Default::default()
        },
    );
    let mut service = client.connection().workflow_service();
    match tokio::time::timeout(Duration::from_secs(3), service.describe_namespace(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(ControlError::TemporalUnreachable {
            address: config.temporal_address.clone(),
            reason: status.message().to_owned(),
        }),
        Err(_) => Err(ControlError::TemporalUnreachable {
            address: config.temporal_address.clone(),
            reason: "no answer within 3s".into(),
        }),
    }
}

/// gzip on the Temporal connection trades CPU for bandwidth. Across a network that can pay;
/// to a server on the same machine it is pure cost (each workflow task reporting a few
/// hundred page results is compressed and inflated while every lane waits for the reply), so
/// unless told otherwise a loopback address gets none and any other gzip.
fn compression(setting: Option<Compression>, url: &Url) -> GrpcCompression {
    match setting {
        Some(Compression::Gzip) => GrpcCompression::Gzip,
        Some(Compression::None) => GrpcCompression::None,
        None => {
            let host = url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let local = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if local {
                GrpcCompression::None
            } else {
                GrpcCompression::Gzip
            }
        }
    }
}

/// Make sure the search attributes the workflow upserts exist in the namespace (a workflow
/// that upserts an unknown attribute fails its tasks).
pub async fn ensure_search_attributes(
    client: &Client,
    namespace: &str,
) -> Result<(), ControlError> {
    let failed = |action: &str, e: temporalio_client::tonic::Status| ControlError::Temporal {
        action: action.to_owned(),
        reason: e.message().to_owned(),
    };
    let wanted = [
        (names::SA_STATUS, IndexedValueType::Keyword),
        (names::SA_PROCESSED, IndexedValueType::Int),
    ];
    let mut operator = client.connection().operator_service();
    let existing = operator
        .list_search_attributes(temporalio_client::tonic::Request::new(
            ListSearchAttributesRequest {
                namespace: namespace.to_owned(),
            },
        ))
        .await
        .map_err(|e| failed("listing the namespace's search attributes", e))?
        .into_inner()
        .custom_attributes;
    let missing: HashMap<String, i32> = wanted
        .iter()
        .filter(|(name, _)| !existing.contains_key(*name))
        .map(|(name, ty)| (name.to_string(), *ty as i32))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    info!(attributes = ?missing.keys().collect::<Vec<_>>(), "registering search attributes");
    operator
        .add_search_attributes(temporalio_client::tonic::Request::new(
            AddSearchAttributesRequest {
                search_attributes: missing,
                namespace: namespace.to_owned(),
            },
        ))
        .await
        .map_err(|e| {
            failed(
                &format!(
                    "registering search attributes {} and {} in namespace {namespace} \
                     (register them with `temporal operator search-attribute create`, or grant the worker the right)",
                    names::SA_STATUS,
                    names::SA_PROCESSED
                ),
                e,
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_connections_are_not_compressed_unless_asked() {
        for local in [
            "http://127.0.0.1:7233",
            "http://localhost:7233",
            "http://[::1]:7233",
        ] {
            let url = Url::parse(local).unwrap();
            assert_eq!(compression(None, &url), GrpcCompression::None);
            assert_eq!(
                compression(Some(Compression::Gzip), &url),
                GrpcCompression::Gzip
            );
        }
        let remote = Url::parse("https://temporal.example.com:7233").unwrap();
        assert_eq!(compression(None, &remote), GrpcCompression::Gzip);
        assert_eq!(
            compression(Some(Compression::None), &remote),
            GrpcCompression::None
        );
    }
}
