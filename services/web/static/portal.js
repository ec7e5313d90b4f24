// The portal's Add card: Stripe Elements collects the card (its number never reaches us),
// Stripe.js createPaymentMethod gives its id, and the form posts that id with the signed
// authorization. No inline scripts: the form carries data-* attributes.
"use strict";
(function () {
  const form = document.querySelector("form[data-portal-card]");
  if (!form) return;
  let stripe = null;
  let card = null;

  function mount() {
    if (card || typeof Stripe === "undefined") return;
    stripe = Stripe(form.dataset.publishableKey);
    card = stripe.elements().create("card");
    card.mount(form.querySelector(".card-element"));
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest('[data-reveal="' + form.id + '"]')) setTimeout(mount, 0);  // app.js reveals the form
  });

  form.addEventListener("submit", async (event) => {
    if (form.dataset.ready === "true") return;
    event.preventDefault();
    mount();
    const status = form.querySelector("[data-card-status]");
    const button = form.querySelector('button[type="submit"]');
    const fail = (message) => {
      status.textContent = message;
      status.className = "error";
      button.disabled = false;
      button.removeAttribute("aria-busy");
    };
    const name = form.elements.signed_by.value.trim();
    if (!name || !form.elements.agree.checked) return fail("Read the authorization, type your full name and tick the box.");
    if (!card) return fail("The card form did not load (Stripe.js unavailable). Reload the page and try again.");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    status.textContent = "Saving the card…";
    status.className = "";
    const { paymentMethod, error } = await stripe.createPaymentMethod({
      type: "card", card, billing_details: { name },
    });
    if (error) return fail(error.message || "The card was declined.");
    form.elements.payment_method_id.value = paymentMethod.id;
    form.dataset.ready = "true";
    form.submit();
  });
})();
