// A real OpenID Connect provider (panva's oidc-provider) for the console's sign-in tests.
// Usage: node provider.mjs <host> <port> <client_id> <client_secret> <redirect_uri>
// Its development log-in form takes any login and password: the login is the account's
// email, verified unless it starts with "unverified:".
import Provider from "oidc-provider";

const [host, port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://${host}:${port}`;

function account(id) {
  const unverified = id.startsWith("unverified:");
  const email = unverified ? id.slice("unverified:".length) : id;
  return {
    accountId: id,
    async claims() {
      return { sub: id, email, email_verified: !unverified };
    },
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  cookies: { keys: ["eventgate-test-provider"] },
  features: { devInteractions: { enabled: true } },
  findAccount: (ctx, id) => account(id),
});

// Its own failures, for a test that fails to read (stderr).
provider.on("server_error", (ctx, error) => console.error(error));

provider.listen(Number(port), host, () => {
  process.stdout.write(`ready ${issuer}\n`);
});
