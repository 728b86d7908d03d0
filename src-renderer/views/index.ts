/**
 * The screens of the app, in navigation order. Each capability adds its screen here (one line);
 * App.vue shows the one named by the address's hash (#uploads, #messages, ...).
 */
import type { Component } from 'vue';
import DisseminationsView from './DisseminationsView.vue';
import NbPanel from '../components/NbPanel.vue';
import ExecutionsView from './ExecutionsView.vue';
import MessagesView from './MessagesView.vue';
import StoredDataView from './StoredDataView.vue';
import UploadsView from './UploadsView.vue';
import ProductsView from './ProductsView.vue';
import ReportsView from './ReportsView.vue';

export interface Screen {
  id: string;
  /** i18n key of the navigation label */
  label: string;
  component: Component;
}

export const screens: Screen[] = [
  { id: 'uploads', label: 'nav.uploads', component: UploadsView },
  { id: 'executions', label: 'nav.executions', component: ExecutionsView },
  { id: 'storedData', label: 'nav.storedData', component: StoredDataView },
  { id: 'messages', label: 'nav.messages', component: MessagesView },
  { id: 'products', label: 'products.nav', component: ProductsView },
  { id: 'disseminations', label: 'dissemination.nav', component: DisseminationsView },
  { id: 'reports', label: 'reports.nav', component: ReportsView },
  { id: 'nb', label: 'nb.nav', component: NbPanel },
];
