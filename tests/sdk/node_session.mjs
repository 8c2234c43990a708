// A scripted session of Infisical's Node SDK (@infisical/sdk) against a running Devpilot.
// Run by tests/test_infisical_sdks.py: node node_session.mjs, with SITE_URL, CLIENT_ID, CLIENT_SECRET and
// PROJECT_ID in the environment. Every operation asserts its result; the last line printed is a JSON
// summary of what each operation returned. Any failed assertion exits non-zero.
import assert from "node:assert/strict";
import { InfisicalSDK } from "@infisical/sdk";

const { SITE_URL, CLIENT_ID, CLIENT_SECRET, PROJECT_ID } = process.env;
const env = "dev";
const done = {};

const client = new InfisicalSDK({ siteUrl: SITE_URL });
await client.auth().universalAuth.login({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
const token = client.auth().getAccessToken();
assert.match(token, /^dvpat_/);
done.login = true;

await client.auth().universalAuth.renew();
assert.equal(client.auth().getAccessToken(), token);
done.renew = true;

const folder = await client.folders().create({ name: "node-app", path: "/", projectId: PROJECT_ID, environment: env });
assert.equal(folder.name, "node-app");
assert.ok(folder.id && folder.envId);
const folders = await client.folders().listFolders({ environment: env, projectId: PROJECT_ID, path: "/" });
assert.ok(folders.some((f) => f.id === folder.id));
done.folders = folders.map((f) => f.name);

const created = await client.secrets().createSecret("NODE_ROOT", {
  projectId: PROJECT_ID, environment: env, secretPath: "/", secretValue: "root-1", secretComment: "made by node",
});
assert.equal(created.secret.secretKey, "NODE_ROOT");
assert.equal(created.secret.secretValue, "root-1");
assert.equal(created.secret.version, 1);
await client.secrets().createSecret("NODE_NESTED", {
  projectId: PROJECT_ID, environment: env, secretPath: "/node-app", secretValue: "nested-1",
});
done.create = true;

const flat = await client.secrets().listSecrets({ projectId: PROJECT_ID, environment: env, secretPath: "/" });
assert.deepEqual(flat.secrets.map((s) => s.secretKey).filter((k) => k.startsWith("NODE_")), ["NODE_ROOT"]);
const deep = await client.secrets().listSecrets({
  projectId: PROJECT_ID, environment: env, secretPath: "/", recursive: true,
});
const nested = deep.secrets.find((s) => s.secretKey === "NODE_NESTED");
assert.ok(nested, "recursive list includes subfolders");
assert.equal(nested.secretPath, "/node-app");
assert.equal(nested.secretValue, "nested-1");
done.list = flat.secrets.length;
done.listRecursive = deep.secrets.length;

const updated = await client.secrets().updateSecret("NODE_ROOT", {
  projectId: PROJECT_ID, environment: env, secretPath: "/", secretValue: "root-2", secretComment: "rotated",
});
assert.equal(updated.secret.secretValue, "root-2");
assert.equal(updated.secret.version, 2);
done.update = updated.secret.version;

const v1 = await client.secrets().getSecret({
  projectId: PROJECT_ID, environment: env, secretPath: "/", secretName: "NODE_ROOT", version: 1,
});
assert.equal(v1.secretValue, "root-1");
assert.equal(v1.version, 1);
const current = await client.secrets().getSecret({
  projectId: PROJECT_ID, environment: env, secretPath: "/", secretName: "NODE_ROOT",
});
assert.equal(current.secretValue, "root-2");
done.getByVersion = v1.secretValue;

const renamed = await client.secrets().updateSecret("NODE_ROOT", {
  projectId: PROJECT_ID, environment: env, secretPath: "/", newSecretName: "NODE_RENAMED",
});
assert.equal(renamed.secret.secretKey, "NODE_RENAMED");
assert.equal(renamed.secret.secretValue, "root-2");
done.rename = renamed.secret.secretKey;

const deleted = await client.secrets().deleteSecret("NODE_RENAMED", {
  projectId: PROJECT_ID, environment: env, secretPath: "/",
});
assert.equal(deleted.secret.secretKey, "NODE_RENAMED");
const after = await client.secrets().listSecrets({ projectId: PROJECT_ID, environment: env, secretPath: "/" });
assert.ok(!after.secrets.some((s) => s.secretKey === "NODE_RENAMED"));
done.delete = true;

const environment = await client.environments().create({ projectId: PROJECT_ID, name: "QA", slug: "qa" });
assert.equal(environment.slug, "qa");
// The Node SDK has no environment list: the same session's token on Infisical's route.
const listed = await fetch(`${SITE_URL}/api/v1/workspace/${PROJECT_ID}/environments`, {
  headers: { Authorization: `Bearer ${token}` },
});
assert.equal(listed.status, 200);
const slugs = (await listed.json()).environments.map((e) => e.slug);
assert.ok(slugs.includes("dev") && slugs.includes("qa"));
done.environments = slugs;

// Errors reach the SDK with Devpilot's message.
await assert.rejects(
  client.secrets().listSecrets({ projectId: PROJECT_ID, environment: "no-such-env", secretPath: "/" }),
  /Environment no-such-env not found/,
);
done.errors = true;

console.log(JSON.stringify(done));
