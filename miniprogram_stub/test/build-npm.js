// What WeChat DevTools' "构建 npm" does, for the tests and for a checkout opened without DevTools: each package
// in package.json's "dependencies" (never the devDependencies) that declares a "miniprogram" folder is copied
// from node_modules/ into miniprogram_npm/<name>/, where pages and app.wxss refer to it. Run by `npm ci`
// (postinstall), so miniprogram_npm/ always matches the lock file.
"use strict";

const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const OUT = path.join(ROOT, "miniprogram_npm");

function build() {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  fs.rmSync(OUT, { recursive: true, force: true });
  const built = [];
  Object.keys(manifest.dependencies || {}).forEach((name) => {
    const pkgDir = path.join(ROOT, "node_modules", name);
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    if (!pkg.miniprogram) throw new Error(name + " has no \"miniprogram\" folder: DevTools would not build it either");
    fs.cpSync(path.join(pkgDir, pkg.miniprogram), path.join(OUT, name), { recursive: true });
    built.push(name + "@" + pkg.version);
  });
  return built;
}

if (require.main === module) {
  console.log("miniprogram_npm/: " + build().join(", "));
}

module.exports = { build };
