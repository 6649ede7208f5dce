// Dragging a card to another stage of the board, with a mouse, a pen or a finger (pointer
// events). A finger drags from the card's grip, so the board still scrolls under it; every
// drag has the card's "Mover para" control as its keyboard alternative.

import { toast } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { problem } from './explain.js';

const THRESHOLD = 6;

// A card held by the pointer: live redraws of the board wait until it is let go.
let holding = 0;

/** Whether a card is being dragged now (the board's live redraw waits for the drop). */
export const dragging = () => holding > 0;

/**
 * The stage column under a point, by the columns' boxes (the dragged card covers the
 * point, and a short column still takes a drop below its last card).
 */
function columnAt(x, y) {
  const board = document.getElementById('board')?.getBoundingClientRect();
  if (!board || y < board.top || y > board.bottom + 200) return null;
  return [...document.querySelectorAll('section.column[data-stage]')].find((c) => {
    const box = c.getBoundingClientRect();
    return x >= box.left && x <= box.right;
  }) ?? null;
}

async function drop(deal, column, reload) {
  const name = column.dataset.origin;
  try {
    await gql('mutation($d: ID!, $s: ID!, $v: Int) { moveDeal(dealId: $d, input: {stageId: $s, expectedVersion: $v}) { id } }', {
      d: deal.id,
      s: column.dataset.stage,
      v: deal.version,
    });
    toast(t('pipeline.dropped', deal.contact.name || deal.contact.email, name));
  } catch (err) {
    toast(err.code === 'CONFLICT' ? t('work.conflict') : problem(err), 'error');
  }
  reload();
}

/** Makes `card` draggable to the board's other stage columns. */
export function draggable(card, deal, reload) {
  card.classList.add('draggable');
  let start = null;
  let over = null;
  const clear = () => {
    card.classList.remove('dragging');
    card.style.transform = '';
    over?.classList.remove('drop-target');
    over = null;
  };
  card.addEventListener('pointerdown', (event) => {
    if (event.button !== 0 || event.target.closest('a, button, select, input, textarea')) return;
    if (event.pointerType === 'touch' && !event.target.closest('.grip')) return;
    // No text selection and no native drag of the card's text or links: either would
    // cancel the pointer after its first move.
    event.preventDefault();
    start = { x: event.clientX, y: event.clientY, id: event.pointerId, moving: false };
    holding += 1;
    card.setPointerCapture(event.pointerId);
  });
  card.addEventListener('dragstart', (event) => event.preventDefault());
  card.addEventListener('pointermove', (event) => {
    if (!start || event.pointerId !== start.id) return;
    const dx = event.clientX - start.x;
    const dy = event.clientY - start.y;
    if (!start.moving && Math.hypot(dx, dy) < THRESHOLD) return;
    start.moving = true;
    card.classList.add('dragging');
    card.style.transform = `translate(${dx}px, ${dy}px)`;
    const column = columnAt(event.clientX, event.clientY);
    if (column !== over) {
      over?.classList.remove('drop-target');
      over = column && column.dataset.stage !== deal.stage.id ? column : null;
      over?.classList.add('drop-target');
    }
  });
  const end = (event) => {
    if (!start || event.pointerId !== start.id) return;
    const target = start.moving && event.type === 'pointerup' ? over : null;
    start = null;
    holding -= 1;
    clear();
    if (target) drop(deal, target, reload);
  };
  card.addEventListener('pointerup', end);
  card.addEventListener('pointercancel', end);
}
