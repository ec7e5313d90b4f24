// The console's few behaviours: menus, dialogs, and Add Card through Stripe Elements.
// No inline scripts: pages only carry data-* attributes.
"use strict";

function closeMenus(except) {
  document.querySelectorAll('[aria-haspopup="menu"][aria-expanded="true"]').forEach((button) => {
    if (button === except) return;
    button.setAttribute("aria-expanded", "false");
    document.getElementById(button.getAttribute("aria-controls")).hidden = true;
  });
}

document.addEventListener("click", (event) => {
  const menuButton = event.target.closest('[aria-haspopup="menu"]');
  if (menuButton) {
    const menu = document.getElementById(menuButton.getAttribute("aria-controls"));
    const open = menuButton.getAttribute("aria-expanded") !== "true";
    closeMenus(menuButton);
    menuButton.setAttribute("aria-expanded", String(open));
    menu.hidden = !open;
    if (open) menu.querySelector('[role="menuitem"]')?.focus();
    return;
  }
  if (!event.target.closest('[role="menu"]')) closeMenus(null);

  const opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.openDialog);
    closeMenus(null);
    dialog.showModal();
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) {
    closer.closest("dialog").close();
    return;
  }
  const reveal = event.target.closest("[data-reveal]");
  if (reveal) {
    const target = document.getElementById(reveal.dataset.reveal);
    target.hidden = false;
    reveal.setAttribute("aria-expanded", "true");
    const cardForm = target.matches("[data-card-setup]") ? target : target.querySelector("[data-card-setup]");
    if (cardForm) mountCard(cardForm);
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeMenus(null);
});

// Payment dialog: show the fields of the chosen payment type only.
function syncPaymentType(form) {
  const chosen = form.querySelector('input[name="type"]:checked');
  form.querySelectorAll("[data-for-type]").forEach((el) => {
    el.hidden = !chosen || !el.dataset.forType.split(" ").includes(chosen.value);
  });
  const online = form.querySelector('input[name="online"]');
  const when = form.querySelector("[data-paid-at]");
  if (online && when) when.hidden = chosen && chosen.value === "card" && online.checked;
}
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-payment-form]");
  if (form) syncPaymentType(form);
});
document.addEventListener("htmx:load", (event) => {
  event.detail.elt.querySelectorAll?.("form[data-payment-form]").forEach(syncPaymentType);
});
window.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-payment-form]").forEach(syncPaymentType);
});

// Add Card: Stripe Elements collects the card (its number never reaches us); a SetupIntent
// confirmed in the browser (confirmCardSetup, so 3-D Secure works) gives the payment method id,
// which the form then posts with the authorization.
const cards = new WeakMap();

function mountCard(form) {
  if (cards.has(form) || typeof Stripe === "undefined") return;
  const stripe = Stripe(form.dataset.publishableKey);
  const elements = stripe.elements();
  const card = elements.create("card");
  card.mount(form.querySelector(".card-element"));
  cards.set(form, { stripe, card });
}

// A form that takes a new card only sometimes (the portal's Pay: "A new card" or a saved one)
// says when: data-card-setup-if="name=value".
function setupWanted(form) {
  const rule = form.dataset.cardSetupIf;
  if (!rule) return true;
  const [name, value] = rule.split("=");
  const chosen = form.querySelector(`input[name="${name}"]:checked`);
  return Boolean(chosen && chosen.value === value);
}
function mountWanted() {
  document.querySelectorAll("form[data-card-setup-if]").forEach((form) => { if (setupWanted(form)) mountCard(form); });
}
document.addEventListener("change", mountWanted);
window.addEventListener("DOMContentLoaded", mountWanted);

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-card-setup]");
  if (!form || form.dataset.ready === "true" || !setupWanted(form)) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  mountCard(form);
  const status = form.querySelector("[data-card-status]");
  const submit = form.querySelector('button[type="submit"]');
  const fail = (message) => {
    status.textContent = message;
    status.className = "error";
    submit.disabled = false;
    submit.removeAttribute("aria-busy");
  };
  const state = cards.get(form);
  if (!state) return fail("The card form did not load (Stripe.js unavailable). Reload the page and try again.");
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  status.textContent = "Saving the card…";
  status.className = "";
  let secret;
  try {
    const response = await fetch(form.dataset.setupUrl, {
      method: "POST",
      headers: { "x-csrftoken": form.querySelector('input[name="csrftoken"]').value },
    });
    const body = await response.json();
    if (!response.ok) return fail(body.error?.message || "The card could not be set up.");
    secret = body.client_secret;
  } catch (err) {
    return fail("The payments service did not answer; try again.");
  }
  const holder = form.querySelector('input[name="holder"]') || form.querySelector('input[name="signed_by"]');
  const result = await state.stripe.confirmCardSetup(secret, {
    payment_method: { card: state.card, billing_details: { name: holder ? holder.value : undefined } },
  });
  if (result.error) return fail(result.error.message || "The card was declined.");
  form.querySelector('input[name="payment_method_id"]').value = result.setupIntent.payment_method;
  form.dataset.ready = "true";
  status.textContent = "";
  if (form.hasAttribute("hx-post")) htmx.trigger(form, "card-ready");
  else form.submit();
}, true);

// Show a block only while a radio has a value: data-show-when="name=value".
function syncShowWhen(root) {
  root.querySelectorAll("[data-show-when]").forEach((el) => {
    const [name, value] = el.dataset.showWhen.split("=");
    const form = el.closest("form") || document;
    const chosen = form.querySelector(`input[name="${name}"]:checked`);
    el.hidden = !chosen || chosen.value !== value;
  });
}
document.addEventListener("change", () => syncShowWhen(document));
window.addEventListener("DOMContentLoaded", () => syncShowWhen(document));
document.addEventListener("htmx:load", () => syncShowWhen(document));

// A saved card: hide its form again (the card list was swapped in by htmx).
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!form.matches || !form.matches("form[data-card-setup]")) return;
  form.dataset.ready = "false";
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = false;
  submit.removeAttribute("aria-busy");
  const status = form.querySelector("[data-card-status]");
  if (event.detail.successful) {
    if (form.dataset.keepOpen !== "true") form.hidden = true;
    status.textContent = "";
  } else {
    status.textContent = event.detail.xhr.responseText.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim() ||
      "The card could not be saved.";
    status.className = "error";
  }
});
