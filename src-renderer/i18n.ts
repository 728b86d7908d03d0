import { createI18n } from 'vue-i18n';

const en = {
  app: { title: 'Fonds', connected: 'Connected', offline: 'Reconnecting…', language: 'Language' },
  nav: { uploads: 'Uploads' },
  uploads: {
    title: 'Uploads',
    drop: 'Drop files, folders or BagIt bags here',
    dropHint: 'They are checked in place: naming conflicts, MD5 signatures, BagIt validity.',
    pickFiles: 'Choose files…',
    pickFolder: 'Choose a folder…',
    pathLabel: 'Or type a path on the server',
    pathPlaceholder: '/path/to/delivery',
    add: 'Check',
    empty: 'No uploads yet. Drop a delivery above to start.',
    files: '{n} files',
    pushing: 'Sending {done} of {total} files…',
    cancel: 'Cancel',
    recheck: 'Check again',
    status: { OPEN: 'Open', CHECKING: 'Checking', CLOSED: 'Closed', UNSTABLE: 'Unstable', DELETED: 'Deleted' },
    check: { archive: 'Archive check', standard: 'Standard check' },
    checkStatus: { WAITING: 'waiting', PROGRESS: 'in progress', SUCCESS: 'passed', FAILURE: 'failed' },
    counts: '{errors} errors, {warnings} warnings',
    findings: 'Check results',
    noFindings: 'No problem found.',
    timeline: 'Timeline',
    eta: '{rate}/s, {eta} left',
    bag: 'BagIt bag',
    select: 'Select an upload to see its checks and timeline.',
  },
  severity: { error: 'Error', warning: 'Warning', info: 'Note' },
  extent: {
    tools: 'Extent tools',
    map: 'Extent map',
    mode: { navigate: 'Move', draw: 'Draw polygon', hole: 'Draw hole', modify: 'Modify', delete: 'Delete' },
    undo: 'Undo',
    redo: 'Redo',
    zoom: 'Zoom to extent',
    export: 'Export GeoJSON',
    clear: 'Clear',
    dropHint: 'Drop a GeoJSON, KML or zipped Shapefile here',
    count: '{n} / {max} positions',
    tolerance: 'Simplify tolerance',
    simplify: 'Apply simplification',
    fit: 'Simplify under {max}',
  },
};

const fr: typeof en = {
  app: { title: 'Fonds', connected: 'Connecté', offline: 'Reconnexion…', language: 'Langue' },
  nav: { uploads: 'Livraisons' },
  uploads: {
    title: 'Livraisons',
    drop: 'Déposez ici des fichiers, des dossiers ou des sacs BagIt',
    dropHint: 'Ils sont vérifiés sur place : conflits de nommage, signatures MD5, validité BagIt.',
    pickFiles: 'Choisir des fichiers…',
    pickFolder: 'Choisir un dossier…',
    pathLabel: 'Ou saisissez un chemin sur le serveur',
    pathPlaceholder: '/chemin/vers/la/livraison',
    add: 'Vérifier',
    empty: 'Aucune livraison. Déposez-en une ci-dessus pour commencer.',
    files: '{n} fichiers',
    pushing: 'Envoi de {done} fichiers sur {total}…',
    cancel: 'Annuler',
    recheck: 'Vérifier à nouveau',
    status: { OPEN: 'Ouverte', CHECKING: 'En vérification', CLOSED: 'Fermée', UNSTABLE: 'Instable', DELETED: 'Supprimée' },
    check: { archive: 'Vérification archive', standard: 'Vérification standard' },
    checkStatus: { WAITING: 'en attente', PROGRESS: 'en cours', SUCCESS: 'réussie', FAILURE: 'en échec' },
    counts: '{errors} erreurs, {warnings} avertissements',
    findings: 'Résultats des vérifications',
    noFindings: 'Aucun problème trouvé.',
    timeline: 'Historique',
    eta: '{rate}/s, reste {eta}',
    bag: 'Sac BagIt',
    select: 'Sélectionnez une livraison pour voir ses vérifications et son historique.',
  },
  severity: { error: 'Erreur', warning: 'Avertissement', info: 'Note' },
  extent: {
    tools: "Outils d'emprise",
    map: "Carte de l'emprise",
    mode: { navigate: 'Déplacer', draw: 'Dessiner un polygone', hole: 'Dessiner un trou', modify: 'Modifier', delete: 'Supprimer' },
    undo: 'Annuler',
    redo: 'Rétablir',
    zoom: "Zoomer sur l'emprise",
    export: 'Exporter en GeoJSON',
    clear: 'Effacer',
    dropHint: 'Déposez ici un GeoJSON, un KML ou un Shapefile zippé',
    count: '{n} / {max} points',
    tolerance: 'Tolérance de simplification',
    simplify: 'Appliquer la simplification',
    fit: 'Simplifier sous {max}',
  },
};

export const messages = { en, fr };
export type Locale = keyof typeof messages;

export const i18n = createI18n({
  legacy: false,
  locale: (localStorage.getItem('fonds.locale') as Locale | null) ?? 'en',
  fallbackLocale: 'en',
  messages,
});

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale;
  localStorage.setItem('fonds.locale', locale);
  document.documentElement.lang = locale;
}
