// Compiled with `tsc --strict --noEmit` beside the types openapi-typescript generated from the
// served /openapi.json (tests/openapi.rs): the shapes a TypeScript client of vouchd uses must
// exist under these names and fit together.
import type { components, operations, paths } from "./vouchd";

type Voucher = components["schemas"]["Voucher"];
type Problem = components["schemas"]["Problem"];
type CreateBody = NonNullable<
  paths["/v1/vouchers"]["post"]["requestBody"]
>["content"]["application/json"];
type Created = operations["createVoucher"]["responses"][201]["content"]["application/json"];
type Missing = operations["getVoucher"]["responses"][404]["content"]["application/problem+json"];
type StatsBody = paths["/v1/stats"]["get"]["responses"][200]["content"]["application/json"];

export const create: CreateBody = {
  amount: "25.00",
  currency: "EUR",
  label: "Gift card",
  discount: null,
};

export const missing: Missing = {
  type: "about:blank",
  title: "Not Found",
  status: 404,
  detail: "No such resource.",
  code: "not_found",
};

export function balance(v: Created & Voucher): string | null {
  return v.remaining_amount;
}

export function firstError(p: Problem): string | undefined {
  return p.errors?.[0]?.field;
}

export function liability(s: StatsBody): string[] {
  return s.liability.map((l) => `${l.amount} ${l.currency}`);
}
