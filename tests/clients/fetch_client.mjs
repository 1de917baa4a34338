// The vouchd walk-through with Node's fetch (undici, keep-alive): token, create, a list answer
// over 100 KB, a charge, the CSV export read as a stream. Prints a JSON summary.
//
// Usage: node fetch_client.mjs BASE_URL CLIENT_ID SECRET
const [base, clientId, secret] = process.argv.slice(2);
const check = async (r, status) => {
  if (r.status !== status) throw new Error(`${r.url}: ${r.status} ${await r.text()}`);
  return r;
};
const basic = Buffer.from(`${clientId}:${secret}`).toString("base64");
const token = await (await check(await fetch(`${base}/oauth/token`, {
  method: "POST",
  headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
  body: "grant_type=client_credentials",
}), 200)).json();
const auth = { Authorization: `Bearer ${token.access_token}` };
const json = { ...auth, "Content-Type": "application/json" };
const voucher = await (await check(await fetch(`${base}/v1/vouchers`, {
  method: "POST", headers: json, body: JSON.stringify({ amount: "50.00" }),
}), 201)).json();
const listed = await (await check(await fetch(`${base}/v1/vouchers?per_page=500`, { headers: auth }), 200)).text();
await check(await fetch(`${base}/v1/vouchers/${voucher.id}/charges`, {
  method: "POST", headers: json, body: JSON.stringify({ type: "charge", amount: "10.00" }),
}), 201);
const after = await (await check(await fetch(`${base}/v1/vouchers/${voucher.id}`, { headers: auth }), 200)).json();
const exported = await check(await fetch(`${base}/v1/vouchers/export.csv`, { headers: auth }), 200);
let text = "";
const decoder = new TextDecoder();
for await (const chunk of exported.body) text += decoder.decode(chunk, { stream: true });
console.log(JSON.stringify({
  list_bytes: Buffer.byteLength(listed),
  list_items: JSON.parse(listed).data.length,
  remaining: after.remaining_amount,
  export_rows: text.split("\n").filter((l) => l.length > 0).length - 1,
  export_chunked: exported.headers.get("transfer-encoding") === "chunked",
}));
