import { readFileSync } from 'node:fs';
import { Router, type Response } from 'express';
import { z } from 'zod';
import { audited, mergeFields, requestFields } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import { pasRoutes, WebAuthnCredential, type WebAuthnOptions } from '@keyway/contracts';
import { bindRoute, InvalidGrant, InvalidRequest, requireBodyType, shapeResponse, tooManyRequests, windowLimiter, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { answerSignIn, boundRequest, browserRefusal, FORM_REFUSED, redirectTo, requireBrowser } from '../endpoints/authorization.ts';
import { noStore, rejectDuplicateParams } from '../endpoints/token.ts';
import { rethrowUpstream } from '../grants/authorize.ts';
import type { GrantContext } from '../grants/context.ts';
import { idpBusy, throttledLogin } from '../grants/throttled-login.ts';
import { sourceOf } from '../throttling/login-throttle.ts';
import { CodeGrant } from './codes.ts';
import { enrolmentPage, sendPage } from './pages.ts';
import { sha256, unguessable, type PendingAuthorization, type PendingAuthorizations } from './pending-requests.ts';
import { signIn, type HoldCode } from './sign-in.ts';

/** How long the enrolment offer may stay open: the IdP's registration challenge lives as long (IdP CHALLENGE_TTL_MS). */
const ENROLMENT_TTL_MS = 5 * 60 * 1000;
/** Like login pages per source (pending-requests.ts): bounds the challenges one address can make the IdP hold. */
const OPTIONS_PER_SOURCE_PER_MINUTE = 60;

const PASSKEY_REFUSED = 'This passkey was not accepted: it is not registered here, was already used, or was made for another site.';
const REGISTRATION_REFUSED = 'The passkey could not be added. Try again, or choose “Not now”.';

const Enrolment = z.object({
  /** the code the sign-in earned, issued when the offer ends */
  grant: CodeGrant,
  redirect_uri: z.string(),
  state: z.string().optional(),
  /** SHA-256 of the browser binding cookie the login page was served with */
  browser: z.string(),
  email: z.string(),
});
type Enrolment = z.infer<typeof Enrolment>;

/**
 * Sign-ins held for the passkey enrolment offer: kept under their id's hash like pending requests,
 * bound to the browser, single use; the code is issued only when the offer ends.
 */
export function passkeyEnrolments(store: Store) {
  const key = (id: string) => `passkey-enrolment:${sha256(id)}`;
  const optionsLimit = windowLimiter(store, { name: 'passkey-options', points: OPTIONS_PER_SOURCE_PER_MINUTE, windowMs: 60_000 });
  return {
    /** 429 past OPTIONS_PER_SOURCE_PER_MINUTE: each answer makes the IdP hold a challenge for 5 minutes */
    async admitOptions(source: string): Promise<void> {
      const limit = await optionsLimit.hit(source);
      if (!limit.allowed) throw tooManyRequests(limit, `${limit.count} passkey options for ${source} in a minute`, 'too many passkey sign-ins started from this address; retry later');
    },
    async open(enrolment: Enrolment): Promise<string> {
      const id = unguessable();
      await store.set(key(id), JSON.stringify(enrolment), { ttlMs: ENROLMENT_TTL_MS });
      return id;
    },
    async find(id: string): Promise<Enrolment | undefined> {
      const raw = await store.get(key(id));
      return raw === null ? undefined : Enrolment.parse(JSON.parse(raw));
    },
    /** the enrolment, once: a form posted twice leads to one code */
    async take(id: string): Promise<Enrolment | undefined> {
      const raw = await store.take(key(id));
      return raw === null ? undefined : Enrolment.parse(JSON.parse(raw));
    },
  };
}
export type PasskeyEnrolments = ReturnType<typeof passkeyEnrolments>;

type PasskeyContext = GrantContext & { pending: PendingAuthorizations; enrolments: PasskeyEnrolments };

/**
 * The enrolment offer after a password sign-in: for a person without a passkey, the code is held and
 * "Add a passkey to this account" shown instead of the redirect. The offer is a convenience: when the
 * IdP cannot make options (passkeys off, an outage), the sign-in goes on without it.
 */
export function passkeyOffer(context: PasskeyContext, request: PendingAuthorization, email: string, log: Logger) {
  let offered: { id: string; options: WebAuthnOptions } | undefined;
  const hold: HoldCode = async (grant) => {
    const answer = await context.idp.passkeyRegistrationOptions(grant.sub).catch((err: unknown) => {
      log.warn('passkey.offer_skipped', { err });
      return undefined;
    });
    if (!answer || answer.registered > 0) return false;
    const id = await context.enrolments.open({ grant, redirect_uri: request.redirect_uri, state: request.state, browser: request.browser, email });
    offered = { id, options: answer.options };
    return true;
  };
  return {
    hold,
    show(res: Response): void {
      if (!offered) throw new Error('no passkey enrolment was offered');
      sendPage(res, 200, enrolmentPage({ enrolment: offered.id, options: offered.options, email }), new URL(request.redirect_uri).origin);
    },
  };
}

/** The browser's credential JSON (PublicKeyCredential.toJSON()), parsed at the edge; anything else names no passkey. */
function credentialOf(text: string): WebAuthnCredential | undefined {
  try {
    const parsed = WebAuthnCredential.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The login page's passkey routes: options for "Sign in with a passkey" (from the page's script),
 * the sign-in itself (the IdP verifies, the entitlement service authorizes, a code with amr hwk mfa),
 * the enrolment offer's answer, and the page's script.
 */
export function passkeyEndpoint(context: PasskeyContext): Router {
  const router = Router();
  const files = { 'passkeys.js': readFileSync(new URL('../assets/passkeys.js', import.meta.url), 'utf8') };

  bindRoute(router, pasRoutes.asset, (_req, res, input) => {
    const script = files[input.params().name];
    // revalidated at each page load: a deploy's new script is picked up at once
    res.status(200).set({ 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }).send(script);
  });

  bindRoute(router, pasRoutes.passkeyOptions, noStore, requireBodyType(pasRoutes.passkeyOptions), async (req, res, input) => {
    await boundRequest(context, req, input.body().request);
    await context.enrolments.admitOptions(sourceOf(req));
    const { options } = await context.idp.passkeyAuthenticationOptions().catch(rethrowUpstream);
    res.json(shapeResponse(pasRoutes.passkeyOptions.responses[200].schema, { options }));
  });

  bindRoute(router, pasRoutes.passkeyLogin, noStore, requireBodyType(pasRoutes.passkeyLogin), rejectDuplicateParams, async (req, res, input) => {
    const form = input.body();
    const { request, client } = await boundRequest(context, req, form.request);
    const pending = { id: form.request, request };
    await answerSignIn(
      context,
      req,
      res,
      { ...pending, client },
      undefined,
      (origin) =>
        signIn(
          context,
          origin,
          pending,
          async (audit) => {
            // usernameless: no account is named before the IdP answers, so only the source's limits apply
            const subject = await throttledLogin(context, origin.source, audit, undefined, async () => {
              const credential = credentialOf(form.credential);
              if (!credential) throw audit.refuse(new InvalidGrant('the passkey sign-in is not valid', 'the credential is not a WebAuthn credential JSON'), 'login.failed');
              return context.idp.verifyPasskey(credential).catch((err: unknown) => {
                if (err instanceof ApiError && err.code === 'invalid_grant') throw audit.refuse(new InvalidGrant('the passkey sign-in is not valid', err.description), 'login.failed');
                throw idpBusy(err, audit) ?? rethrowUpstream(err);
              });
            });
            audit.note({ subject: subject.sub, tenant: subject.tenant });
            return subject;
          },
          undefined,
          'passkey',
        ),
      PASSKEY_REFUSED,
    );
  });

  bindRoute(router, pasRoutes.passkeyEnrolment, noStore, requireBodyType(pasRoutes.passkeyEnrolment), rejectDuplicateParams, async (req, res, input) => {
    const form = input.body();
    const enrolment = await context.enrolments.find(form.enrolment);
    if (!enrolment) throw new InvalidRequest(FORM_REFUSED, 'no such passkey enrolment (expired or ended)');
    requireBrowser(req, enrolment.browser);
    const { grant } = enrolment;
    const origin = new URL(enrolment.redirect_uri).origin;
    let registered = false;
    if (form.credential !== undefined && form.not_now === undefined) {
      const credential = credentialOf(form.credential);
      const refused = credential
        ? await context.idp.registerPasskey(grant.sub, credential).then(
            () => undefined,
            (err: unknown) => err,
          )
        : new InvalidGrant(REGISTRATION_REFUSED);
      if (refused !== undefined) {
        if (!(refused instanceof ApiError && refused.status === 400) && !(refused instanceof InvalidGrant)) throw rethrowUpstream(refused);
        req.log.info('passkey registration refused', { detail: refused instanceof ApiError ? refused.description : 'not a WebAuthn credential' });
        // the offer again, with new options (the IdP's challenge was spent)
        const { options } = await context.idp.passkeyRegistrationOptions(grant.sub).catch(rethrowUpstream);
        return sendPage(res, 400, enrolmentPage({ enrolment: form.enrolment, options, email: enrolment.email, message: REGISTRATION_REFUSED }), origin);
      }
      registered = true;
    }
    const held = await context.enrolments.take(form.enrolment);
    if (!held) throw new InvalidRequest('this sign-in has already been completed', 'the enrolment was ended by a concurrent post');
    const fields = mergeFields(requestFields(req), { clientId: grant.client_id, subject: grant.sub, tenant: grant.tid });
    const code = await audited(context, { action: 'authorization_code.issued', fields, noise: { gate: context.noise, source: sourceOf(req) } }, async (audit) => {
      const { code, id } = await context.codes.issue(grant);
      audit.note({ detail: { code_id: id, after: 'passkey_enrolment', enrolment: registered ? 'registered' : 'not_now', amr: (grant.authentication?.amr ?? []).join(' ') } });
      return code;
    });
    redirectTo(res, enrolment.redirect_uri, { code, state: enrolment.state, iss: context.settings.issuer });
  });

  router.use(browserRefusal);
  return router;
}
