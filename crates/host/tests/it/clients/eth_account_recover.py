"""Recovers signers with eth-account, an implementation independent of nitro-wallet's.

Run by the `rpc` integration tests. Reads one JSON object on stdin:
  {"message": "<text>", "message_signature": "0x…",
   "typed_data": {types, primaryType, domain, message}, "typed_signature": "0x…"}
and prints {"message_signer": "0x…", "typed_signer": "0x…"}.
"""

import json
import sys

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data


def main() -> None:
    request = json.load(sys.stdin)
    message_signer = Account.recover_message(
        encode_defunct(text=request["message"]),
        signature=request["message_signature"],
    )
    typed_signer = Account.recover_message(
        encode_typed_data(full_message=request["typed_data"]),
        signature=request["typed_signature"],
    )
    json.dump({"message_signer": message_signer, "typed_signer": typed_signer}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
