"""botsecret: sync bot credentials from AWS, GCP and Vault into Kubernetes Secrets."""

__version__ = "0.1.0"
