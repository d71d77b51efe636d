// The SQL editor: CodeMirror 6 with MySQL highlighting, completion of table
// and column names and of cascade's keywords and functions, Mod-Enter to run, and colours from CSS variables so the
// theme follows prefers-color-scheme.

import { EditorView, keymap } from "@codemirror/view";
import { Compartment, Prec } from "@codemirror/state";
import { basicSetup } from "codemirror";
import { sql, MySQL } from "@codemirror/lang-sql";
import { HighlightStyle, syntaxHighlighting, syntaxTree } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { statementAt } from "./statement.js";
import { completionOptions } from "./sql-words.js";

// cascade's keywords and functions (sql-words.js), offered beside the
// dialect's keywords and the schema's names while a word is typed, except
// after a `.` (a column of a table), in strings, quoted names and comments.
const WORD_OPTIONS = completionOptions();
const NOT_CODE = new Set(["String", "QuotedIdentifier", "LineComment", "BlockComment"]);
function cascadeWords(context) {
  if (NOT_CODE.has(syntaxTree(context.state).resolveInner(context.pos, -1).name)) return null;
  const word = context.matchBefore(/\w+/);
  if (!word && !context.explicit) return null;
  const from = word ? word.from : context.pos;
  if (from > 0 && context.state.sliceDoc(from - 1, from) === ".") return null;
  return { from, options: WORD_OPTIONS, validFor: /^\w*$/ };
}

const highlight = HighlightStyle.define([
  { tag: t.keyword, color: "var(--hl-keyword)", fontWeight: "600" },
  { tag: [t.string, t.special(t.string)], color: "var(--hl-string)" },
  { tag: [t.number, t.bool, t.null], color: "var(--hl-number)" },
  { tag: [t.comment, t.lineComment, t.blockComment], color: "var(--hl-comment)", fontStyle: "italic" },
  { tag: [t.typeName, t.standard(t.name)], color: "var(--hl-type)" },
  { tag: [t.operator, t.punctuation], color: "var(--hl-operator)" },
  { tag: t.special(t.name), color: "var(--hl-name)" },
]);

const theme = EditorView.theme({
  "&": { color: "var(--fg)", backgroundColor: "var(--editor-bg)", fontSize: "14px" },
  ".cm-content": { caretColor: "var(--fg)", fontFamily: "var(--mono)" },
  ".cm-gutters": { backgroundColor: "var(--editor-gutter)", color: "var(--muted)", border: "none" },
  ".cm-activeLine": { backgroundColor: "var(--editor-active)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--editor-active)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "var(--editor-selection) !important",
  },
  ".cm-tooltip": { backgroundColor: "var(--panel)", color: "var(--fg)", border: "1px solid var(--border)" },
  ".cm-tooltip-autocomplete ul li[aria-selected]": { backgroundColor: "var(--accent)", color: "var(--accent-fg)" },
});

/**
 * Creates the editor in `parent`. `onRun(sql)` is called by Mod-Enter with
 * the selection, or the statement under the cursor.
 */
export function createEditor(parent, { doc, onRun }) {
  const language = new Compartment();
  const languageFor = (schema) => {
    const support = sql({ dialect: MySQL, schema, upperCaseKeywords: true });
    return [support, support.language.data.of({ autocomplete: cascadeWords })];
  };
  const view = new EditorView({
    parent,
    doc,
    extensions: [
      Prec.highest(
        keymap.of([
          {
            key: "Mod-Enter",
            run: (v) => {
              onRun(selectionOrStatement(v));
              return true;
            },
          },
        ]),
      ),
      basicSetup,
      language.of(languageFor({})),
      syntaxHighlighting(highlight),
      theme,
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ "aria-label": "SQL editor" }),
    ],
  });
  return {
    view,
    get text() {
      return view.state.doc.toString();
    },
    set text(value) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: value } });
    },
    /** The selection if any, else the whole text. */
    selectionOrAll() {
      const sel = view.state.selection.main;
      return sel.empty ? view.state.doc.toString() : view.state.sliceDoc(sel.from, sel.to);
    },
    selectionOrStatement: () => selectionOrStatement(view),
    /** Completion of these tables and columns: { table: [columns] }. */
    setSchema(schema) {
      view.dispatch({ effects: language.reconfigure(languageFor(schema)) });
    },
    focus: () => view.focus(),
  };
}

function selectionOrStatement(view) {
  const sel = view.state.selection.main;
  if (!sel.empty) return view.state.sliceDoc(sel.from, sel.to);
  return statementAt(view.state.doc.toString(), sel.head);
}
