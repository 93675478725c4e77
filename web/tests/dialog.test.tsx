import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import * as React from "react";
import { Dialog } from "@/components/ui/dialog";

afterEach(cleanup);

function Host({ tick }: { tick: number }) {
  // A new onClose at every render, as a parent's inline arrow function is.
  return (
    <Dialog open onClose={() => void tick} title="Edit">
      <input aria-label="Name" />
      <input aria-label="Jump host" />
    </Dialog>
  );
}

describe("Dialog", () => {
  it("focuses its first field when it opens", () => {
    render(<Host tick={0} />);
    expect(document.activeElement).toBe(screen.getByLabelText("Name"));
  });

  it("leaves the focus where the user put it when its parent re-renders", () => {
    const { rerender } = render(<Host tick={0} />);
    const jump = screen.getByLabelText("Jump host");
    jump.focus();
    rerender(<Host tick={1} />);
    rerender(<Host tick={2} />);
    expect(document.activeElement).toBe(jump);
  });

  it("closes on Escape with the latest onClose", () => {
    const calls: number[] = [];
    const { rerender } = render(
      <Dialog open onClose={() => calls.push(1)} title="Edit">
        <input aria-label="Name" />
      </Dialog>,
    );
    rerender(
      <Dialog open onClose={() => calls.push(2)} title="Edit">
        <input aria-label="Name" />
      </Dialog>,
    );
    fireEvent.keyDown(document, { key: "Escape" });
    expect(calls).toEqual([2]);
  });
});
