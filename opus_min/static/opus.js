// opus_min pages: confirm before destructive buttons, and follow a running job's phase with
// UWS WAIT (one blocking request at a time, never a tight poll), swapping in the fresh job
// section when the phase changes. The pages work without this script (reload to update).
"use strict";

(function () {
  const UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0";
  const WAITABLE = ["QUEUED", "EXECUTING"];
  const WAIT_SECONDS = 30;

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function armConfirms(root) {
    root.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) {
          event.preventDefault();
        }
      });
    });
  }

  function say(text) {
    const live = document.getElementById("live");
    if (live) {
      live.textContent = text;
    }
  }

  async function currentPhase(uws, phase) {
    const url = uws + "?WAIT=" + WAIT_SECONDS + "&PHASE=" + encodeURIComponent(phase);
    const response = await fetch(url, {
      headers: { Accept: "application/xml" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) {
      throw new Error("HTTP " + response.status);
    }
    const doc = new DOMParser().parseFromString(await response.text(), "application/xml");
    const element = doc.getElementsByTagNameNS(UWS_NS, "phase")[0];
    return element ? element.textContent.trim() : phase;
  }

  async function refresh(section) {
    const response = await fetch(section.dataset.page, {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) {
      throw new Error("HTTP " + response.status);
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("job");
    if (!fresh) {
      throw new Error("no job section");
    }
    const adopted = document.adoptNode(fresh);
    section.replaceWith(adopted);
    armConfirms(adopted);
    return adopted;
  }

  async function follow(section) {
    let failures = 0;
    while (section.dataset.live && WAITABLE.includes(section.dataset.phase)) {
      const shown = section.dataset.phase;
      const started = Date.now();
      try {
        const phase = await currentPhase(section.dataset.uws, shown);
        if (phase !== shown) {
          section = await refresh(section);
        } else if (Date.now() - started < 1000) {
          await sleep(2000); // the server answered early (under load): do not hammer it
        }
        failures = 0;
      } catch (error) {
        failures += 1;
        if (failures > 5) {
          say("live updates stopped (" + error.message + "); reload the page");
          return;
        }
        say("connection problem, retrying…");
        await sleep(2000 * failures);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    armConfirms(document);
    const section = document.getElementById("job");
    if (section && section.dataset.live) {
      follow(section);
    }
  });
})();
