"""Writes crds/botsecret.dev_{botsecretstores,clusterbotsecretstores}.yaml (and the chart's copies).

The two kinds share every provider field; the cluster-scoped one adds spec.conditions and a
namespace on each Secret reference. Generating both from one description keeps them from
drifting. Run: python3 hack/store_crds.py (tests/e2e/test_store_crd.py checks the files match).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
URL_RULE = {"rule": "self.startsWith('http://') || self.startsWith('https://')",
            "message": "must start with http:// or https://"}


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _name(what: str) -> dict[str, Any]:
    return _s(what, minLength=1, maxLength=253, pattern=NAME_PATTERN)


def _secret_ref(description: str, cluster: bool, *, key: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"name": _name("Name of the Secret.")}
    required = ["name"]
    if cluster:
        props["namespace"] = _s("Namespace of the Secret. Only the operator reads it, and only for BotSecrets "
                                "of namespaces that spec.conditions admits.",
                                minLength=1, maxLength=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        required.append("namespace")
    else:
        description += " It lives in the store's own namespace."
    if key:
        props["key"] = _s("Key of the Secret that holds the PEM text.", default="ca.crt", maxLength=253)
    return {"type": "object", "description": description, "required": required, "properties": props}


def _service_account(cluster: bool, what: str) -> dict[str, Any]:
    where = ("in the namespace of each BotSecret that uses this store (so every team keeps its own "
             "cloud role; never one of another namespace)") if cluster else "in the store's namespace"
    return _s(f"ServiceAccount {where} whose token {what}.", maxLength=253, pattern=NAME_PATTERN)


def _events_schema(field: str, field_schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A provider's changeEvents block: where the events are read (``field``), and the fallback."""
    fallback = _s("How often BotSecrets whose every reference is covered by a healthy change-event stream poll "
                  "anyway (their own refreshInterval if that is longer).",
                  default="1h", pattern=r"^([0-9]+([.][0-9]+)?(ms|h|m|s))+$")
    return {"type": "object", "required": [field], "description": description,
            "properties": {field: field_schema, "fallbackRefreshInterval": fallback}}


def _events_reader(cluster: bool) -> str:
    return "the credentials of credentialsSecretRef (required with changeEvents)" if cluster else "the store's identity"


def gcp_change_events_schema(cluster: bool) -> dict[str, Any]:
    subscription = _s("The subscription's resource name, such as projects/my-project/subscriptions/secret-events.",
                      maxLength=512,
                      pattern=r"^projects/[a-z0-9][a-z0-9.:-]{0,127}/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")
    return _events_schema("subscription", subscription, (
        "Secret Manager event notifications: a Pub/Sub subscription of a topic that the secrets list "
        "(SECRET_VERSION_ADD, SECRET_VERSION_DISABLE, SECRET_DELETE, ...). The operator pulls it with "
        f"{_events_reader(cluster)} (roles/pubsub.subscriber), through the store's endpoint when one is set, and "
        "syncs exactly the BotSecrets that read a changed secret. While the subscription answers, those "
        "BotSecrets poll only every fallbackRefreshInterval."))


def change_events_schema(cluster: bool) -> dict[str, Any]:
    queue = _s("URL of the queue, such as https://sqs.us-east-1.amazonaws.com/123456789012/secret-changes; requests "
               "go to its scheme and host, in the store's region.", maxLength=2048,
               pattern=r"^https?://[^/?#\s]+/[0-9]{12}/[A-Za-z0-9_-]{1,80}([.]fifo)?$")
    return _events_schema("sqsQueueURL", queue, (
        "Secrets Manager change events: an SQS queue that an EventBridge rule fills with Secrets Manager's "
        "CloudTrail events (PutSecretValue, UpdateSecretVersionStage, RotationSucceeded, DeleteSecret, ...). The "
        f"operator reads it with {_events_reader(cluster)} (sqs:ReceiveMessage, sqs:DeleteMessage) and syncs "
        "exactly the BotSecrets that read a changed secret. While the queue answers, those BotSecrets poll only "
        "every fallbackRefreshInterval."))


def provider_schema(cluster: bool) -> dict[str, Any]:
    aws = {
        "type": "object", "description": "AWS Secrets Manager or Systems Manager Parameter Store in one region.",
        "required": ["region"],
        "properties": {
            "region": _s("AWS region of the secrets, such as eu-west-1.", minLength=1, maxLength=64),
            "service": _s("Which AWS service holds the values: SecretsManager (secrets) or ParameterStore "
                          "(Systems Manager parameters, String and SecureString; a remote name is the parameter "
                          "name, a version pins a version number or a label).",
                          default="SecretsManager", enum=["SecretsManager", "ParameterStore"]),
            "endpoint": _s("Secrets Manager (or Parameter Store) endpoint URL instead of the region's public one "
                           "(a VPC endpoint, or a local test server).", maxLength=2048,
                           **{"x-kubernetes-validations": [URL_RULE]}),
            "credentialsSecretRef": _secret_ref(
                "Secret with the keys accessKeyId and secretAccessKey (and optionally sessionToken).", cluster),
            "serviceAccountName": _service_account(
                cluster, "(with the audience below) is exchanged for roleArn through STS AssumeRoleWithWebIdentity, "
                         "like IRSA"),
            "roleArn": _s("IAM role to assume, such as arn:aws:iam::123456789012:role/bot-reader.", maxLength=2048),
            "audience": _s("Audience of the ServiceAccount token given to STS.", default="sts.amazonaws.com",
                           maxLength=256),
            "stsEndpoint": _s("STS endpoint URL instead of the region's public one; also used to check the store "
                              "(GetCallerIdentity).", maxLength=2048, **{"x-kubernetes-validations": [URL_RULE]}),
            "changeEvents": change_events_schema(cluster),
        },
        "x-kubernetes-validations": [
            {"rule": "has(self.roleArn) == has(self.serviceAccountName)",
             "message": "aws.roleArn and aws.serviceAccountName go together (web identity)"},
            {"rule": "!(has(self.roleArn) && has(self.credentialsSecretRef))",
             "message": "aws sets either credentialsSecretRef or serviceAccountName with roleArn, not both"},
            {"rule": "!has(self.changeEvents) || !has(self.service) || self.service == 'SecretsManager'",
             "message": "aws.changeEvents come from Secrets Manager only (service: SecretsManager)",
             "fieldPath": ".changeEvents"},
        ],
    }
    if cluster:
        aws["x-kubernetes-validations"].append(
            {"rule": "!has(self.changeEvents) || has(self.credentialsSecretRef)",
             "message": "aws.changeEvents in a ClusterBotSecretStore needs credentialsSecretRef (the queue's identity)",
             "fieldPath": ".changeEvents"})
    gcp = {
        "type": "object", "description": "Google Secret Manager in one project.", "required": ["project"],
        "properties": {
            "project": _s("Google Cloud project id (or number) that holds the secrets.", minLength=1, maxLength=128),
            "location": _s("Region of regional secrets, such as europe-west1; the operator then uses "
                           "secretmanager.LOCATION.rep.googleapis.com. Unset means global secrets.", maxLength=64),
            "endpoint": _s("Endpoint instead of Google's: https://host:port or host:port for TLS with the same "
                           "credentials, http://host:port for plaintext without credentials (emulators and tests "
                           "only; needs insecureAllowPlainHTTP).", maxLength=2048),
            "credentialsSecretRef": _secret_ref(
                "Secret with a service-account key under the key credentials.json. Without it the operator uses "
                "its own Application Default Credentials, if the namespace is allowed to.", cluster),
            "serviceAccountName": _service_account(
                cluster, "is exchanged at Google's STS through Workload Identity Federation (with workloadIdentity)"),
            "workloadIdentity": {
                "type": "object", "required": ["audience"],
                "description": "Workload Identity Federation: a token of serviceAccountName is exchanged at Google's "
                               "STS for a Google access token (google-auth identity-pool credentials; no key, no "
                               "file), optionally impersonating serviceAccountEmail.",
                "properties": {
                    "audience": _s("The workload identity pool provider, such as //iam.googleapis.com/projects/123/"
                                   "locations/global/workloadIdentityPools/POOL/providers/PROVIDER.",
                                   minLength=1, maxLength=1024),
                    "tokenAudience": _s("Audience of the ServiceAccount token, if the provider allows another than "
                                        "audience.", maxLength=1024),
                    "serviceAccountEmail": _s("Google service account to impersonate (IAM credentials "
                                              "generateAccessToken) with the federated token.", maxLength=320),
                    "stsEndpoint": _s("STS token endpoint URL instead of https://sts.googleapis.com/v1/token.",
                                      maxLength=2048, **{"x-kubernetes-validations": [URL_RULE]}),
                    "iamEndpoint": _s("IAM credentials endpoint URL instead of https://iamcredentials.googleapis.com.",
                                      maxLength=2048, **{"x-kubernetes-validations": [URL_RULE]}),
                },
            },
            "changeEvents": gcp_change_events_schema(cluster),
        },
        "x-kubernetes-validations": [
            {"rule": "has(self.workloadIdentity) == has(self.serviceAccountName)",
             "message": "gcp.workloadIdentity and gcp.serviceAccountName go together (Workload Identity Federation)"},
            {"rule": "!(has(self.workloadIdentity) && has(self.credentialsSecretRef))",
             "message": "gcp sets either credentialsSecretRef or serviceAccountName with workloadIdentity, not both"},
        ],
    }
    if cluster:
        gcp["x-kubernetes-validations"].append(
            {"rule": "!has(self.changeEvents) || has(self.credentialsSecretRef)",
             "message": "gcp.changeEvents in a ClusterBotSecretStore needs credentialsSecretRef (the subscription's "
                        "identity)",
             "fieldPath": ".changeEvents"})
    vault = {
        "type": "object", "description": "One KV secrets engine mount of HashiCorp Vault or OpenBao.",
        "required": ["address"],
        "properties": {
            "address": _s("URL of the Vault server, such as https://vault.example.com:8200.", minLength=1,
                          maxLength=2048, **{"x-kubernetes-validations": [
                              {**URL_RULE, "message": "vault.address must start with http:// or https://"}]}),
            "mount": _s("Path of the KV secrets engine mount, without slashes.", default="secret", maxLength=256),
            "kvVersion": {"type": "integer", "enum": [1, 2], "default": 2,
                          "description": "Version of the KV engine at the mount: 2 (versioned, the default) or 1 "
                                         "(unversioned; remoteRef.version cannot be used)."},
            "namespace": _s("Vault Enterprise / OpenBao namespace (the X-Vault-Namespace header) that holds the "
                            "mount, such as team-a/bots. Not a Kubernetes namespace.", maxLength=256),
            "caBundle": _s("PEM-encoded CA certificates to trust for the Vault server's TLS certificate (the text "
                           "itself, not base64). Unset means the system trust store.", maxLength=65536),
            "caSecretRef": _secret_ref("Secret holding the PEM CA certificates to trust, instead of caBundle.",
                                       cluster, key=True),
            "insecureSkipVerify": {"type": "boolean",
                                   "description": "Do not verify the Vault server's TLS certificate. Never for "
                                                  "production; every write with it set posts a Warning event."},
            "credentialsSecretRef": _secret_ref(
                "Secret with a Vault token under the key token, or an AppRole under the keys roleId and secretId "
                "(see auth.appRole).", cluster),
            "serviceAccountName": _service_account(cluster, "logs in through the Kubernetes auth method "
                                                            "(see auth.kubernetes)"),
            "auth": {
                "type": "object", "description": "How to log in to Vault when no token is given.",
                "properties": {
                    "kubernetes": {
                        "type": "object",
                        "description": "The Kubernetes auth method: log in with a token of serviceAccountName.",
                        "properties": {
                            "role": _s("Vault role to log in as.", maxLength=256),
                            "mount": _s("Path of the Kubernetes auth method mount.", default="kubernetes",
                                        maxLength=256),
                            "audience": _s("Audience of the ServiceAccount token the role expects.",
                                           default="vault", maxLength=256),
                        },
                    },
                    "appRole": {
                        "type": "object",
                        "description": "The AppRole auth method, with roleId and secretId from credentialsSecretRef.",
                        "properties": {"mount": _s("Path of the AppRole auth method mount.", default="approle",
                                                   maxLength=256)},
                    },
                },
            },
        },
        "x-kubernetes-validations": [
            {"rule": "!has(self.auth) || !has(self.auth.kubernetes) || "
                     "(has(self.auth.kubernetes.role) && has(self.serviceAccountName))",
             "message": "vault.auth.kubernetes needs a role and vault.serviceAccountName"},
            {"rule": "has(self.credentialsSecretRef) || (has(self.auth) && has(self.auth.kubernetes))",
             "message": "vault needs credentialsSecretRef (a token or an AppRole) or auth.kubernetes"},
            {"rule": "!(has(self.caBundle) && has(self.caSecretRef))",
             "message": "vault sets caBundle or caSecretRef, not both"},
        ],
    }
    return {
        "type": "object", "description": "The remote store: set exactly one of aws, gcp and vault.",
        "properties": {"aws": aws, "gcp": gcp, "vault": vault},
        "x-kubernetes-validations": [{
            "rule": "(has(self.aws) ? 1 : 0) + (has(self.gcp) ? 1 : 0) + (has(self.vault) ? 1 : 0) == 1",
            "message": "spec.provider must set exactly one of aws, gcp, vault"}],
    }


PLAIN_HTTP_RULE = {
    "rule": "has(self.insecureAllowPlainHTTP) && self.insecureAllowPlainHTTP || !("
            "(has(self.provider.aws) && ((has(self.provider.aws.endpoint) && self.provider.aws.endpoint.startsWith('http://'))"
            " || (has(self.provider.aws.stsEndpoint) && self.provider.aws.stsEndpoint.startsWith('http://'))"
            " || (has(self.provider.aws.changeEvents) && self.provider.aws.changeEvents.sqsQueueURL.startsWith('http://'))))"
            " || (has(self.provider.gcp) && has(self.provider.gcp.endpoint) && self.provider.gcp.endpoint.lowerAscii().startsWith('http://'))"
            " || (has(self.provider.vault) && self.provider.vault.address.startsWith('http://')))",
    "message": "plain http:// sends credentials and values unencrypted; use https:// or set "
               "spec.insecureAllowPlainHTTP: true",
    "fieldPath": ".provider",
}


def conditions_schema() -> dict[str, Any]:
    return {
        "type": "array", "minItems": 1, "maxItems": 32,
        "description": "Which namespaces may use this store; an entry admits a namespace if it is listed in "
                       "namespaces or its labels match namespaceSelector, and the entries are ORed. "
                       "namespaceSelector: {} admits every namespace.",
        "items": {
            "type": "object", "description": "One way to admit namespaces.",
            "x-kubernetes-validations": [{"rule": "has(self.namespaces) || has(self.namespaceSelector)",
                                          "message": "a condition sets namespaces or namespaceSelector"}],
            "properties": {
                "namespaces": {"type": "array", "maxItems": 256, "description": "Namespaces admitted by name.",
                               "items": _s("A namespace name.", maxLength=63)},
                "namespaceSelector": {
                    "type": "object", "description": "Namespaces admitted by their labels.",
                    "properties": {"matchLabels": {"type": "object", "description": "Labels a namespace must "
                                                   "carry, all of them.", "additionalProperties": {"type": "string"}}},
                },
            },
        },
    }


def status_schema() -> dict[str, Any]:
    return {
        "type": "object", "description": "What the operator last found; written by the operator only.",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0,
                                   "description": "The metadata.generation the status describes."},
            "conditions": {
                "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                "description": "Ready is True when the operator could authenticate with the store (reason Valid), "
                               "or could not check it without a consuming namespace (ValidationUnknown).",
                "items": {
                    "type": "object", "description": "One condition, in the shape of metav1.Condition.",
                    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
                    "properties": {
                        "type": _s("Type of the condition, such as Ready.", maxLength=316),
                        "status": _s("Status of the condition.", enum=["True", "False", "Unknown"]),
                        "reason": _s("Machine-readable reason, in CamelCase.", maxLength=1024),
                        "message": _s("Human-readable details; names fields and Secrets, never values.",
                                      maxLength=32768),
                        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0,
                                               "description": "The metadata.generation the condition was set for."},
                        "lastTransitionTime": _s("When the condition last changed status or reason.",
                                                 format="date-time"),
                    },
                },
            },
            "changeEvents": {
                "type": "object", "description": "The change-event stream (spec.provider.aws.changeEvents or "
                                                  "spec.provider.gcp.changeEvents).",
                "properties": {
                    "healthy": {"type": "boolean", "description": "Whether the last ReceiveMessage (Pub/Sub: Pull) "
                                "succeeded; while false, BotSecrets poll at their own refreshInterval."},
                    "reason": _s("Receiving, or the class of the last error (an AWS error code, a Google error "
                                 "class).", maxLength=256),
                    "message": _s("Human-readable details; never a message's content.", maxLength=1024),
                    "lastTransitionTime": _s("When healthy or reason last changed.", format="date-time"),
                },
            },
        },
    }


def crd(cluster: bool) -> dict[str, Any]:
    kind = "ClusterBotSecretStore" if cluster else "BotSecretStore"
    plural = kind.lower() + "s"
    who = ("Cluster administrators write it; it says which namespaces may use it (spec.conditions)."
           if cluster else "Admins of its namespace write it; only BotSecrets of that namespace can use it.")
    spec_props: dict[str, Any] = {
        "provider": provider_schema(cluster),
        "insecureAllowPlainHTTP": {
            "type": "boolean",
            "description": "Allow http:// addresses, which send credentials and values unencrypted (local test "
                           "servers). Every write through the store then posts a Warning event."},
    }
    spec: dict[str, Any] = {"type": "object", "required": ["provider"], "properties": spec_props,
                            "x-kubernetes-validations": [PLAIN_HTTP_RULE],
                            "description": "The provider's settings and how to authenticate with it."}
    if cluster:
        spec_props["conditions"] = conditions_schema()
        spec["required"] = ["provider", "conditions"]
    columns = [
        {"name": "Ready", "type": "string", "description": "Whether the operator could authenticate.",
         "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Reason", "type": "string", "description": "Why the store is or is not Ready.",
         "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.botsecret.dev"},
        "spec": {
            "group": "botsecret.dev", "scope": "Cluster" if cluster else "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": ["cbss"] if cluster else ["bss"], "categories": ["botsecret"]},
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "required": ["spec"],
                    "description": f"{kind} holds one provider's settings and the identity to use with it: the "
                                   f"trust boundary of botsecret-operator. {who} BotSecrets name it in "
                                   "spec.sources[].storeRef and choose only remote secret names within it.",
                    "properties": {
                        "apiVersion": _s("APIVersion defines the versioned schema of this representation of an "
                                         "object."),
                        "kind": _s("Kind is a string value representing the REST resource this object represents."),
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status_schema(),
                    },
                }},
            }],
        },
    }


def main() -> int:
    header = "# Generated by hack/store_crds.py; edit that file, then run it.\n"
    for cluster in (False, True):
        body = crd(cluster)
        name = f"botsecret.dev_{body['spec']['names']['plural']}.yaml"
        text = header + yaml.safe_dump(body, sort_keys=False, width=100)
        for folder in (REPO / "crds", REPO / "charts" / "botsecret-operator" / "crds"):
            (folder / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
