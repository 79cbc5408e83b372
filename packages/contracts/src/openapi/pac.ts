import { z } from 'zod';
import { Rights, TenantId } from '../common.ts';
import { SasKeyRotation, SasKeyRotationRequest } from '../keys.ts';
import { SasKeyCheck, SasKeyCheckRequest, SasKeyStatus, SasPolicyKeys, SasRequest, SasResponse } from '../pac.ts';
import { jsonResponse, openApiDocument, operatorOnly, serviceOnly } from '../openapi.ts';
import { pathsOf, route } from '../route.ts';

const TenantPath = z.object({ tenant: TenantId });

/** The pac service's operations, declared once (server binding, client, OpenAPI and the endpoint fuzz). */
export const pacRoutes = {
  sas: route({ method: 'post', path: '/v1/sas', summary: 'refresh token → SAS key (checked with PAS: signature, expiry, introspection)', body: { schema: SasRequest, types: ['application/json', 'application/x-www-form-urlencoded'] }, responses: { 200: jsonResponse(SasResponse, 'the SAS key (Cache-Control: no-store)') }, errors: [400, 401, 403, 415, 429, 503] }),
  verifySasKey: serviceOnly(['topic'], route({ method: 'post', path: '/internal/v1/sas-keys/verify', summary: 'whether a SAS key’s signature is genuine, checked with keys that never leave PAC (topic service only)', body: { schema: SasKeyCheckRequest }, responses: { 200: jsonResponse(SasKeyCheck, 'the key’s signed fields and id, or valid: false') }, errors: [400, 415] })),
  sasKeyStatus: serviceOnly(['topic'], route({ method: 'get', path: '/internal/v1/sas-keys/{keyId}', summary: 'whether an issued SAS key was revoked (topic service only)', params: z.object({ keyId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) }), responses: { 200: jsonResponse(SasKeyStatus, 'the status') }, errors: [400] })),
  sasPolicyKeys: operatorOnly(route({ method: 'get', path: '/admin/v1/tenants/{tenant}/sas-policies/{key_name}', summary: 'one rights policy’s primary and secondary keys, for Azure tooling (audited as sas_policy_keys.read)', params: TenantPath.extend({ key_name: Rights }), responses: { 200: jsonResponse(SasPolicyKeys, 'the policy’s keys (Cache-Control: no-store)') }, errors: [400, 500] })),
  rotateSasKey: operatorOnly(route({ method: 'post', path: '/admin/v1/tenants/{tenant}/sas-keys/rotate', summary: 'regenerate the tenant’s primary or secondary namespace key and sign new SAS keys with it', params: TenantPath, body: { schema: SasKeyRotationRequest }, responses: { 200: jsonResponse(SasKeyRotation, 'rotated (no key material)') }, errors: [400, 404, 409, 415] })),
};

export const pacPaths = pathsOf(pacRoutes);

export const pacApi = openApiDocument({ title: 'Keyway PAC', description: 'Trades a valid refresh token for a one-day SAS key for one tenant topic; the only service that mints SAS keys.' }, pacPaths);
