// Starts `pipec lsp` for `.pipe` files (and `.thrift` files, whose edits re-check the programs
// that include them). The binary is `pipe.server.path` (default: `pipec` on the PATH).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("pipe").get("server.path") || "pipec";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "pipe",
    "Pipe",
    { run: server, debug: server },
    {
      documentSelector: [
        { scheme: "file", language: "pipe" },
        { scheme: "file", language: "thrift" },
      ],
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
