"""The reference sample's own operations, for crates/host/tests/it/sample_compat.rs.

`set-key` does what the sample's Lambda `set_key` does (KMS Encrypt of the ASCII hex key with no
encryption context, base64 of the CiphertextBlob into a Secrets Manager secret), with boto3
against moto. `sign` signs a sample `transaction_payload` the way the sample's enclave does
(`value` from ether with `to_wei`, then eth-account's `sign_transaction`), as the independent
reference our `POST /` must match byte for byte.

Usage:
  sample_compat.py set-key <endpoint> <secret-name> <hex-key> <kms-key-id|new>  -> JSON
  sample_compat.py sign <hex-key> <payload-json>                                -> JSON
"""

import base64
import json
import sys


def set_key(endpoint, secret_name, hex_key, key_id):
    import boto3

    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
    secrets = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    if key_id == "new":
        key_id = kms.create_key(Description="the sample's key")["KeyMetadata"]["Arn"]
    response = kms.encrypt(KeyId=key_id, Plaintext=hex_key.encode())
    b64 = base64.standard_b64encode(response["CiphertextBlob"]).decode()
    secret = secrets.create_secret(Name=secret_name, SecretString=b64)
    return {"kms_key_id": key_id, "secret_arn": secret["ARN"], "secret_name": secret["Name"]}


def sign(hex_key, payload):
    from eth_account import Account
    from eth_utils import to_wei

    payload = dict(payload)
    payload["value"] = to_wei(payload["value"], "ether")
    signed = Account.sign_transaction(payload, hex_key)
    raw = getattr(signed, "raw_transaction", None) or signed.rawTransaction

    def hexstr(b):
        h = b.hex()
        return h if h.startswith("0x") else "0x" + h

    return {
        "address": Account.from_key(hex_key).address,
        "transaction_signed": hexstr(raw),
        "transaction_hash": hexstr(signed.hash),
    }


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "set-key":
        out = set_key(*args)
    elif command == "sign":
        # Floats stay Python floats, as json.loads gives them to the sample.
        out = sign(args[0], json.loads(args[1]))
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
