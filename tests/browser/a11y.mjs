// Checks of a page as it is shown: axe-core's accessibility rules, and whether the page fits
// its viewport without scrolling sideways. Used by pages.mjs.
import { readFileSync } from "node:fs";

/// The violations axe-core finds in the page, one entry per rule, with their impact ("minor"
/// to "critical") and the elements at fault (their selectors and what is wrong with the
/// first).
export async function axeViolations(page, axePath) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.evaluate(readFileSync(axePath, "utf8"));
  }
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ")),
      why: v.nodes[0] ? v.nodes[0].failureSummary : "",
    }));
  });
  return found;
}

/// How far the page's body reaches past the viewport's width (0 when it fits), and the
/// elements that reach past it.
export async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const over = document.documentElement.scrollWidth - width;
    const wide = over <= 0 ? [] : [...document.body.querySelectorAll("*")]
      .filter((el) => el.getBoundingClientRect().right > width + 1)
      .slice(0, 5)
      .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""));
    return { over: Math.max(0, over), wide };
  });
}
