import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import * as React from "react";
import { ParamInputs } from "@/components/recurring/param-inputs";
import { ParamBuilder } from "@/components/recurring/param-builder";
import { emptyDraft, initialValues, type FormValue, type ParamDraft } from "@/lib/params";
import type { ParamSpec } from "@/lib/types";

afterEach(() => cleanup());

const SPECS: ParamSpec[] = [
  { name: "ref", type: "string", required: true },
  { name: "workers", type: "integer", min: 1, max: 16, default: 4 as never },
  { name: "dry_run", type: "boolean" },
  { name: "stage", type: "choice", choices: ["staging", "prod"] },
  { name: "notes", type: "text" },
  { name: "api_key", type: "secret" },
];

function Form({ errors = {} }: { errors?: Record<string, string> }) {
  const [values, setValues] = React.useState<Record<string, FormValue>>(() => initialValues(SPECS));
  return (
    <>
      <ParamInputs idPrefix="t" specs={SPECS} values={values} errors={errors} onChange={(n, v) => setValues((c) => ({ ...c, [n]: v }))} />
      <output data-testid="values">{JSON.stringify(values)}</output>
    </>
  );
}

describe("ParamInputs", () => {
  it("renders the right control per type", () => {
    render(<Form />);
    expect(screen.getByLabelText("ref *")).toHaveAttribute("type", "text");
    expect(screen.getByLabelText("workers")).toHaveValue("4");
    expect(screen.getByLabelText("dry_run")).toHaveAttribute("type", "checkbox");
    expect(screen.getByLabelText("stage").tagName).toBe("SELECT");
    expect(screen.getByLabelText("notes").tagName).toBe("TEXTAREA");
    expect(screen.getByLabelText("api_key")).toHaveAttribute("type", "password");
    expect(screen.getByText(/integer, 1–16, default 4 · REMORA_PARAM_WORKERS/)).toBeInTheDocument();
  });
  it("reports edits by name and typed (a checkbox as a boolean)", () => {
    render(<Form />);
    fireEvent.change(screen.getByLabelText("ref *"), { target: { value: "main" } });
    fireEvent.click(screen.getByLabelText("dry_run"));
    fireEvent.change(screen.getByLabelText("stage"), { target: { value: "prod" } });
    expect(JSON.parse(screen.getByTestId("values").textContent!)).toMatchObject({ ref: "main", dry_run: true, stage: "prod" });
  });
  it("shows an error under its field and marks it invalid", () => {
    render(<Form errors={{ workers: "0 is less than the minimum 1" }} />);
    const w = screen.getByLabelText("workers");
    expect(w).toHaveAttribute("aria-invalid", "true");
    expect(w).toHaveAccessibleDescription("0 is less than the minimum 1");
  });
  it("says so when there are no parameters", () => {
    render(<ParamInputs idPrefix="t" specs={[]} values={{}} errors={{}} onChange={() => {}} />);
    expect(screen.getByText("This template has no parameters.")).toBeInTheDocument();
  });
});

describe("ParamBuilder", () => {
  function Builder() {
    const [drafts, setDrafts] = React.useState<ParamDraft[]>([]);
    return (
      <>
        <ParamBuilder drafts={drafts} onChange={setDrafts} errors={{}} />
        <output data-testid="drafts">{JSON.stringify(drafts)}</output>
      </>
    );
  }
  it("adds, types, reorders and removes parameters; options follow the type", () => {
    render(<Builder />);
    const add = screen.getByRole("button", { name: "Add parameter" });
    fireEvent.click(add);
    fireEvent.click(add);
    const names = screen.getAllByLabelText("Name");
    fireEvent.change(names[0], { target: { value: "a" } });
    fireEvent.change(names[1], { target: { value: "b" } });
    fireEvent.change(screen.getAllByLabelText("Type")[1], { target: { value: "choice" } });
    expect(screen.getByLabelText("Choices (one per line)")).toBeInTheDocument();
    // choice has neither a range nor a regex
    expect(screen.getAllByLabelText(/^Min/)).toHaveLength(1);
    expect(screen.getAllByLabelText("Regex (whole value)")).toHaveLength(1);
    fireEvent.click(screen.getByRole("button", { name: "Move parameter 2 up" }));
    let drafts = JSON.parse(screen.getByTestId("drafts").textContent!) as ParamDraft[];
    expect(drafts.map((d) => [d.name, d.type])).toEqual([
      ["b", "choice"],
      ["a", "string"],
    ]);
    fireEvent.click(screen.getByRole("button", { name: "Remove parameter 1" }));
    drafts = JSON.parse(screen.getByTestId("drafts").textContent!);
    expect(drafts).toEqual([{ ...emptyDraft(), name: "a" }]);
  });
});
