// A viem wallet client with a JSON-RPC account (the key lives in nitro-wallet, not here),
// unmodified, against nitro-wallet's POST /rpc. Run by the `rpc` integration tests:
//   NODE_PATH=.tools/node_modules NODE_EXTRA_CA_CERTS=<dev cert> \
//   RPC_URL=https://127.0.0.1:PORT/rpc RPC_TOKEN=… ADDRESS=0x… TO=0x… node viem_client.cjs
// Prints one JSON object with what it did and what viem itself verified.
'use strict';

const {
  createPublicClient,
  createWalletClient,
  http,
  verifyMessage,
  verifyTypedData,
} = require('viem');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

async function main() {
  const address = env('ADDRESS');
  const to = env('TO');
  const transport = http(env('RPC_URL'), {
    fetchOptions: { headers: { Authorization: `Bearer ${env('RPC_TOKEN')}` } },
    retryCount: 0,
    timeout: 30_000,
  });
  const wallet = createWalletClient({ account: address, transport });
  const reader = createPublicClient({ transport });

  const accounts = await wallet.getAddresses();
  const chainId = await wallet.getChainId();

  // eth_sendTransaction with nothing but to and value: nitro-wallet fills nonce, gas, fees.
  const hash = await wallet.sendTransaction({ to, value: 12345n, chain: null });
  const receipt = await reader.waitForTransactionReceipt({ hash, pollingInterval: 100 });

  // eth_signTransaction of a complete transaction, sent by viem as a raw transaction.
  const nonce = await reader.getTransactionCount({ address, blockTag: 'pending' });
  const block = await reader.getBlock();
  const raw = await wallet.signTransaction({
    chain: null,
    chainId,
    to,
    value: 777n,
    nonce,
    gas: 21000n,
    maxFeePerGas: block.baseFeePerGas * 2n + 1_000_000_000n,
    maxPriorityFeePerGas: 1_000_000_000n,
  });
  const rawHash = await reader.sendRawTransaction({ serializedTransaction: raw });
  const rawReceipt = await reader.waitForTransactionReceipt({ hash: rawHash, pollingInterval: 100 });

  // personal_sign, text and raw bytes.
  const message = 'hello from viem';
  const messageSignature = await wallet.signMessage({ message });
  const rawMessage = { raw: '0xdeadbeef00' };
  const rawSignature = await wallet.signMessage({ message: rawMessage });

  // eth_signTypedData_v4: EIP-712's own Mail example, on this chain.
  const typedData = {
    domain: {
      name: 'Ether Mail',
      version: '1',
      chainId,
      verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC',
    },
    types: {
      Person: [
        { name: 'name', type: 'string' },
        { name: 'wallet', type: 'address' },
      ],
      Mail: [
        { name: 'from', type: 'Person' },
        { name: 'to', type: 'Person' },
        { name: 'contents', type: 'string' },
      ],
    },
    primaryType: 'Mail',
    message: {
      from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
      to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' },
      contents: 'Hello, Bob!',
    },
  };
  const typedSignature = await wallet.signTypedData(typedData);

  const out = {
    accounts,
    chainId,
    hash,
    status: receipt.status,
    type: receipt.type,
    from: receipt.from,
    rawHash,
    rawStatus: rawReceipt.status,
    messageSignature,
    messageValid: await verifyMessage({ address, message, signature: messageSignature }),
    rawSignature,
    rawValid: await verifyMessage({ address, message: rawMessage, signature: rawSignature }),
    typedSignature,
    typedValid: await verifyTypedData({ address, ...typedData, signature: typedSignature }),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`viem client failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
